terraform {
  # 1.11: write-only arguments (secret_string_wo, secrets.tf) and S3-native
  # state locking (use_lockfile, backend.hcl) are generally available from it;
  # ephemeral resources (ephemeral "random_password") need 1.10. < 2.0: the
  # 1.x compatibility promise is what this configuration was written against.
  required_version = ">= 1.11, < 2.0"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # 5.88: first release with secret_string_wo/_wo_version on
      # aws_secretsmanager_secret_version (5.73 brought engine = "valkey").
      # < 7.0: a new major may rename or drop arguments used here.
      version = ">= 5.88, < 7.0"
    }
    random = {
      source = "hashicorp/random"
      # 3.7.1: ephemeral "random_password" (3.7.0 and 3.7.1 shipped it on the
      # same day; 3.7.1 is the release meant for use). < 4.0: next major.
      version = ">= 3.7.1, < 4.0"
    }
  }

  # Partial configuration: bucket, region, encryption and locking come from
  # backend.hcl (copy backend.hcl.example), the key from `make deploy STAGE=x`
  # (<prefix>/<stage>/terraform.tfstate), so no two stages share a state.
  # Offline work without a backend: terraform init -backend=false.
  backend "s3" {}
}
