# One customer managed key for everything at rest here: Aurora storage and
# Performance Insights, the ElastiCache data, the Secrets Manager secrets
# (including the RDS-managed master secret), the CloudWatch log groups, the
# alarm topic (monitoring.tf) and the attachments bucket (attachments.tf;
# the API role uses the key through S3 only). AWS services use it through grants made on
# the caller's behalf (allowed by the account statement); CloudWatch Logs and
# CloudWatch alarms, which act as service principals, need a statement each.

resource "aws_kms_key" "this" {
  description             = "${local.name}: Aurora, ElastiCache, Secrets Manager and CloudWatch Logs encryption"
  enable_key_rotation     = true
  rotation_period_in_days = 365
  deletion_window_in_days = var.kms_deletion_window_days

  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "AccountAdministersKeyThroughIam"
        Effect    = "Allow"
        Principal = { AWS = "arn:${local.partition}:iam::${local.account_id}:root" }
        Action    = "kms:*"
        Resource  = "*"
      },
      {
        Sid       = "CloudWatchLogsEncryptsThisAccountsLogGroups"
        Effect    = "Allow"
        Principal = { Service = "logs.${var.region}.${local.dns_suffix}" }
        Action = [
          "kms:Encrypt",
          "kms:Decrypt",
          "kms:ReEncrypt*",
          "kms:GenerateDataKey*",
          "kms:Describe*",
        ]
        Resource = "*"
        Condition = {
          ArnLike = {
            "kms:EncryptionContext:aws:logs:arn" = "arn:${local.partition}:logs:${var.region}:${local.account_id}:log-group:*"
          }
        }
      },
      {
        # An alarm publishing to the encrypted topic: SNS asks KMS for a data
        # key on the publisher's behalf, and the publisher is CloudWatch's
        # service principal (SNS guide, "Enable compatibility between event
        # sources from AWS services and encrypted topics"). Only for this
        # stack's topic, by the encryption context SNS sets (its ARN is
        # built in locals.tf: the topic itself depends on this key).
        Sid       = "CloudWatchAlarmsPublishToTheAlarmTopic"
        Effect    = "Allow"
        Principal = { Service = "cloudwatch.amazonaws.com" }
        Action    = ["kms:Decrypt", "kms:GenerateDataKey*"]
        Resource  = "*"
        Condition = {
          StringEquals = { "kms:EncryptionContext:aws:sns:topicArn" = local.alarm_topic_arn }
        }
      },
    ]
  })

  tags = { Name = local.name }
}

resource "aws_kms_alias" "this" {
  name          = "alias/${local.name}"
  target_key_id = aws_kms_key.this.key_id
}

# ---------------------------------------------------------------- token-signing secret

# AUTH_SECRET_ARN: the HMAC secrets that sign API tokens, as whitespace-separated
# text, newest first (chalicelib/secrets.py also accepts {"secrets": [...]}).
# Rotate by writing "<new> <old>" as a new version, then "<new>" once the old
# tokens may expire; Terraform ignores later versions.
#
# Kept out of plan and state: an ephemeral password (a fresh value on every
# run, never stored) written through the write-only secret_string_wo, which
# the provider sends only when the version is created.
ephemeral "random_password" "auth" {
  length  = 48
  special = false
}

resource "aws_secretsmanager_secret" "auth" {
  #checkov:skip=CKV2_AWS_57:Rotation is an application procedure (prepend a new signing secret, keep the old one until its tokens lapse), not a Secrets Manager rotation Lambda; the app refetches on an unknown key id.
  # A prefix, not a fixed name: a destroyed secret keeps its name for the
  # recovery window, which would block the next apply.
  name_prefix             = "${local.name}/auth-signing-secrets-"
  description             = "${local.name}: API token signing secrets (whitespace-separated, newest first)"
  kms_key_id              = aws_kms_key.this.arn
  recovery_window_in_days = var.secret_recovery_window_days
}

resource "aws_secretsmanager_secret_version" "auth" {
  secret_id        = aws_secretsmanager_secret.auth.id
  secret_string_wo = ephemeral.random_password.auth.result
  # Constant: the value is written once and rotated outside Terraform.
  secret_string_wo_version = 1

  lifecycle {
    # A stage created before the switch to write-only has secret_string set
    # and no _wo_version in its state; without this, its version would be
    # replaced by a new signing secret and every issued token would stop
    # working. (Such a stage keeps that first secret in its state until it is
    # rotated out: docs/deploy.md, "What the state holds".)
    ignore_changes = [secret_string, secret_string_wo_version]
  }
}

# ---------------------------------------------------------------- Redis AUTH token

# REDIS_SECRET_ARN: the ElastiCache AUTH token as plain text. Letters and
# digits only, so it needs no escaping anywhere (ElastiCache refuses @, " and /).
#
# In the state, unlike the signing secret: aws_elasticache_replication_group
# takes the token as auth_token, which is stored (no write-only form in the
# provider releases checked; docs/deploy.md, "What the state holds"), so the
# value is a managed random_password that the state holds as well. The secret
# version at least takes it write-only: twice in the state, not three times.
resource "random_password" "redis_auth" {
  length  = 64
  special = false

  keepers = {
    generation = var.redis_auth_token_generation # bump to rotate
  }
}

resource "aws_secretsmanager_secret" "redis_auth" {
  #checkov:skip=CKV2_AWS_57:Rotated by Terraform, not a rotation Lambda: bumping redis_auth_token_generation makes a new token that is written to ElastiCache (ROTATE strategy: the old token stays valid meanwhile) and to this secret in the same apply.
  name_prefix             = "${local.name}/redis-auth-token-"
  description             = "${local.name}: ElastiCache AUTH token"
  kms_key_id              = aws_kms_key.this.arn
  recovery_window_in_days = var.secret_recovery_window_days
}

resource "aws_secretsmanager_secret_version" "redis_auth" {
  secret_id        = aws_secretsmanager_secret.redis_auth.id
  secret_string_wo = random_password.redis_auth.result
  # A new token generation writes a new version (replacing this one).
  secret_string_wo_version = var.redis_auth_token_generation
}

# ---------------------------------------------------------------- database app user

# DB_SECRET_ARN of the API, the WebSocket handlers and forget_connections;
# APP_DB_SECRET_ARN of migrate, which connects as the master user and creates
# this user (DML on the app's tables only) with the password found here. The
# same JSON as the RDS-managed master secret, {"username", "password"}, which
# chalicelib/secrets.py reads, and which an RDS Proxy auth entry requires.
#
# Kept out of plan and state as the signing secret is: an ephemeral password
# written through the write-only secret_string_wo (jsonencode of an ephemeral
# value is ephemeral too). Letters and digits only: no quoting in SQL or JSON.
ephemeral "random_password" "db_app" {
  length  = 32
  special = false
}

resource "aws_secretsmanager_secret" "db_app" {
  #checkov:skip=CKV2_AWS_57:Rotated by Terraform and migrate, not a rotation Lambda: bumping db_app_password_generation writes a new password here and the next make deploy runs migrate, which sets it on the user (ALTER USER).
  name_prefix             = "${local.name}/db-app-user-"
  description             = "${local.name}: MySQL user of the API (DML only), JSON username and password"
  kms_key_id              = aws_kms_key.this.arn
  recovery_window_in_days = var.secret_recovery_window_days
}

resource "aws_secretsmanager_secret_version" "db_app" {
  secret_id = aws_secretsmanager_secret.db_app.id
  secret_string_wo = jsonencode({
    username = var.db_app_username
    password = ephemeral.random_password.db_app.result
  })
  # A new generation (or a new user name) writes a new version.
  secret_string_wo_version = var.db_app_password_generation

  lifecycle {
    precondition {
      condition     = lower(var.db_app_username) != lower(var.db_master_username)
      error_message = "db_app_username must differ from db_master_username: the API must not connect as the master user."
    }
  }
}
