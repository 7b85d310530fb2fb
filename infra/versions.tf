terraform {
  # 1.11: S3-native state locking (use_lockfile, backend.hcl) is generally
  # available from it (experimental in 1.10). < 2.0: the 1.x compatibility
  # promise is what this configuration was written against.
  required_version = ">= 1.11, < 2.0"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # 5.73 is the first release that accepts engine = "valkey" on
      # aws_elasticache_replication_group; everything else used here is older.
      version = ">= 5.73, < 7.0"
    }
    random = {
      source  = "hashicorp/random"
      version = ">= 3.5"
    }
  }

  # Partial configuration: bucket, region, encryption and locking come from
  # backend.hcl (copy backend.hcl.example), the key from `make deploy STAGE=x`
  # (<prefix>/<stage>/terraform.tfstate), so no two stages share a state.
  # Offline work without a backend: terraform init -backend=false.
  backend "s3" {}
}
