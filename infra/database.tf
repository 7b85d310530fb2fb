# Aurora MySQL 3 (MySQL 8.0) Serverless v2, encrypted with the CMK, TLS
# required, master password managed by RDS in Secrets Manager.

resource "aws_db_subnet_group" "this" {
  name        = local.name
  description = "${local.name}: private subnets of the Aurora cluster"
  subnet_ids  = aws_subnet.private[*].id
}

resource "aws_rds_cluster_parameter_group" "this" {
  name_prefix = "${local.name}-aurora-mysql8-"
  family      = "aurora-mysql8.0"
  description = "${local.name}: TLS only, utf8mb4, audit log"

  # Refuse every connection that is not TLS (the app verifies the server certificate).
  parameter {
    name         = "require_secure_transport"
    value        = "ON"
    apply_method = "immediate"
  }

  # utf8mb4 end to end (the app's tables declare utf8mb4_bin themselves).
  dynamic "parameter" {
    for_each = {
      character_set_server     = "utf8mb4"
      character_set_client     = "utf8mb4"
      character_set_connection = "utf8mb4"
      character_set_database   = "utf8mb4"
      character_set_results    = "utf8mb4"
      collation_server         = "utf8mb4_bin"
      collation_connection     = "utf8mb4_bin"
    }
    content {
      name         = parameter.key
      value        = parameter.value
      apply_method = "pending-reboot"
    }
  }

  # Audit connections, DDL and grants. Not QUERY/QUERY_DML: PyMySQL interpolates
  # parameters client-side, so DML statements carry message texts.
  parameter {
    name         = "server_audit_logging"
    value        = "1"
    apply_method = "immediate"
  }

  parameter {
    name         = "server_audit_events"
    value        = "CONNECT,QUERY_DDL,QUERY_DCL"
    apply_method = "immediate"
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_db_parameter_group" "this" {
  name_prefix = "${local.name}-aurora-mysql8-instance-"
  family      = "aurora-mysql8.0"
  description = "${local.name}: slow query log to CloudWatch"

  parameter {
    name         = "slow_query_log"
    value        = "1"
    apply_method = "immediate"
  }

  parameter {
    name         = "long_query_time"
    value        = "1"
    apply_method = "immediate"
  }

  parameter {
    name         = "log_output"
    value        = "FILE"
    apply_method = "pending-reboot"
  }

  lifecycle {
    create_before_destroy = true
  }
}

# Created before the cluster so they get a retention and the CMK (RDS would
# otherwise create them unencrypted and kept forever).
resource "aws_cloudwatch_log_group" "db" {
  for_each = toset(local.db_log_exports)

  name              = "/aws/rds/cluster/${local.name}/${each.key}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.this.arn
}

# A new suffix per cluster incarnation, so a destroy after a re-create does not
# collide with the previous final snapshot.
resource "random_id" "final_snapshot" {
  byte_length = 4

  keepers = {
    cluster = local.name
  }
}

resource "aws_rds_cluster" "this" {
  #checkov:skip=CKV2_AWS_8:Backups are Aurora's own continuous backups (backup_retention_days, point-in-time restore) plus backtrack; an AWS Backup plan/vault is an account-level decision outside this stack.
  cluster_identifier = local.name
  engine             = "aurora-mysql"
  engine_mode        = "provisioned"
  engine_version     = var.aurora_engine_version
  database_name      = var.db_name
  port               = local.db_port

  master_username               = var.db_master_username
  manage_master_user_password   = true
  master_user_secret_kms_key_id = aws_kms_key.this.arn

  db_subnet_group_name            = aws_db_subnet_group.this.name
  vpc_security_group_ids          = [aws_security_group.db.id]
  db_cluster_parameter_group_name = aws_rds_cluster_parameter_group.this.name

  storage_encrypted                   = true
  kms_key_id                          = aws_kms_key.this.arn
  iam_database_authentication_enabled = true

  backup_retention_period      = var.backup_retention_days
  preferred_backup_window      = "03:00-04:00"
  preferred_maintenance_window = "sun:04:30-sun:05:30"
  backtrack_window             = var.db_backtrack_hours * 3600
  copy_tags_to_snapshot        = true
  deletion_protection          = var.deletion_protection
  skip_final_snapshot          = var.skip_final_snapshot
  final_snapshot_identifier    = "${local.name}-final-${random_id.final_snapshot.hex}"

  enabled_cloudwatch_logs_exports = local.db_log_exports

  allow_major_version_upgrade = false
  apply_immediately           = false

  serverlessv2_scaling_configuration {
    min_capacity = var.aurora_min_acu
    max_capacity = var.aurora_max_acu
  }

  lifecycle {
    precondition {
      condition     = var.aurora_max_acu >= var.aurora_min_acu
      error_message = "aurora_max_acu must be greater than or equal to aurora_min_acu."
    }
  }

  depends_on = [aws_cloudwatch_log_group.db]
}

resource "aws_rds_cluster_instance" "this" {
  count = var.aurora_instance_count

  identifier         = "${local.name}-${count.index + 1}"
  cluster_identifier = aws_rds_cluster.this.id
  instance_class     = "db.serverless"
  engine             = aws_rds_cluster.this.engine
  engine_version     = aws_rds_cluster.this.engine_version
  promotion_tier     = count.index

  db_subnet_group_name    = aws_db_subnet_group.this.name
  db_parameter_group_name = aws_db_parameter_group.this.name
  publicly_accessible     = false
  # The CA the app's bundle (chalicelib/certs/rds-ca-bundle.pem) verifies against.
  ca_cert_identifier = "rds-ca-rsa2048-g1"

  auto_minor_version_upgrade   = true
  apply_immediately            = false
  preferred_maintenance_window = "sun:04:30-sun:05:30"
  copy_tags_to_snapshot        = true

  performance_insights_enabled          = true
  performance_insights_kms_key_id       = aws_kms_key.this.arn
  performance_insights_retention_period = 7

  monitoring_interval = var.db_monitoring_interval
  monitoring_role_arn = var.db_monitoring_interval > 0 ? aws_iam_role.rds_monitoring[0].arn : null
}

resource "aws_iam_role" "rds_monitoring" {
  count = var.db_monitoring_interval > 0 ? 1 : 0

  name = "${local.name}-rds-monitoring"

  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "monitoring.rds.amazonaws.com" }
      Action    = "sts:AssumeRole"
      Condition = { StringEquals = { "aws:SourceAccount" = local.account_id } }
    }]
  })
}

resource "aws_iam_role_policy_attachment" "rds_monitoring" {
  count = var.db_monitoring_interval > 0 ? 1 : 0

  role       = aws_iam_role.rds_monitoring[0].name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
}

# ---------------------------------------------------------------- optional RDS Proxy

resource "aws_db_proxy" "this" {
  count = var.enable_rds_proxy ? 1 : 0

  name                   = local.name
  engine_family          = "MYSQL"
  role_arn               = aws_iam_role.proxy[0].arn
  vpc_subnet_ids         = aws_subnet.private[*].id
  vpc_security_group_ids = [aws_security_group.proxy[0].id]
  require_tls            = true
  idle_client_timeout    = 1800
  debug_logging          = false # would log SQL text, i.e. message bodies

  # One entry per user that connects through the proxy: migrate as the
  # master user, the API as the app user (created by migrate).
  auth {
    auth_scheme = "SECRETS"
    description = "RDS-managed master user secret"
    iam_auth    = "DISABLED"
    secret_arn  = local.db_secret_arn
  }

  auth {
    auth_scheme = "SECRETS"
    description = "App user (DML only) secret"
    iam_auth    = "DISABLED"
    secret_arn  = local.db_app_secret_arn
  }
}

resource "aws_db_proxy_default_target_group" "this" {
  count = var.enable_rds_proxy ? 1 : 0

  db_proxy_name = aws_db_proxy.this[0].name

  connection_pool_config {
    max_connections_percent      = 90
    max_idle_connections_percent = 50
    connection_borrow_timeout    = 10
  }
}

resource "aws_db_proxy_target" "this" {
  count = var.enable_rds_proxy ? 1 : 0

  db_proxy_name         = aws_db_proxy.this[0].name
  target_group_name     = aws_db_proxy_default_target_group.this[0].name
  db_cluster_identifier = aws_rds_cluster.this.cluster_identifier
}

resource "aws_iam_role" "proxy" {
  count = var.enable_rds_proxy ? 1 : 0

  name = "${local.name}-rds-proxy"

  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "rds.amazonaws.com" }
      Action    = "sts:AssumeRole"
      Condition = { StringEquals = { "aws:SourceAccount" = local.account_id } }
    }]
  })
}

resource "aws_iam_role_policy" "proxy" {
  count = var.enable_rds_proxy ? 1 : 0

  # The name predates the app user's secret; kept, since renaming an inline
  # policy replaces it (a moment in which the proxy could read neither).
  name = "read-master-secret"
  role = aws_iam_role.proxy[0].id

  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid      = "ReadDatabaseSecrets"
        Effect   = "Allow"
        Action   = "secretsmanager:GetSecretValue"
        Resource = [local.db_secret_arn, local.db_app_secret_arn]
      },
      {
        Sid       = "DecryptDatabaseSecrets"
        Effect    = "Allow"
        Action    = "kms:Decrypt"
        Resource  = aws_kms_key.this.arn
        Condition = { StringEquals = { "kms:ViaService" = "secretsmanager.${var.region}.${local.dns_suffix}" } }
      },
    ]
  })
}
