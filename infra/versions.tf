terraform {
  # 1.6: the `terraform test` era; nothing here needs a newer language feature.
  required_version = ">= 1.6"

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

  # State holds the Redis AUTH token and the token-signing secret (random_password
  # results), so keep it in an encrypted, access-controlled backend, e.g.
  #   terraform init -backend-config=backend.hcl
  # with an S3 backend (encrypt = true, kms_key_id, use_lockfile = true).
}
