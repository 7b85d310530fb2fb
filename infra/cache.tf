# ElastiCache (Valkey or Redis OSS 7.x), cluster mode disabled: a primary and
# one replica in the two AZs with automatic Multi-AZ failover, TLS required,
# AUTH token, encrypted at rest with the CMK.

resource "aws_elasticache_subnet_group" "this" {
  name        = local.name
  description = "${local.name}: private subnets of the cache"
  subnet_ids  = aws_subnet.private[*].id
}

resource "aws_cloudwatch_log_group" "redis_slow_log" {
  name              = "/aws/elasticache/${local.name}/slow-log"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.this.arn
}

resource "aws_elasticache_replication_group" "this" {
  replication_group_id = local.name
  description          = "${local.name}: inbox cache"
  engine               = var.redis_engine
  engine_version       = var.redis_engine_version
  node_type            = var.redis_node_type
  port                 = local.redis_port
  parameter_group_name = local.redis_parameter_group

  num_cache_clusters          = var.az_count
  preferred_cache_cluster_azs = local.azs
  automatic_failover_enabled  = true
  multi_az_enabled            = true

  subnet_group_name  = aws_elasticache_subnet_group.this.name
  security_group_ids = [aws_security_group.redis.id]

  at_rest_encryption_enabled = true
  kms_key_id                 = aws_kms_key.this.arn
  transit_encryption_enabled = true
  transit_encryption_mode    = "required"
  auth_token                 = random_password.redis_auth.result
  auth_token_update_strategy = "ROTATE"

  auto_minor_version_upgrade = true
  apply_immediately          = false
  maintenance_window         = "sun:05:30-sun:06:30"
  # No snapshots: a pure write-through cache whose misses refill from the
  # database (the system of record); snapshots would only add fork latency.
  snapshot_retention_limit = 0

  log_delivery_configuration {
    destination      = aws_cloudwatch_log_group.redis_slow_log.name
    destination_type = "cloudwatch-logs"
    log_format       = "json"
    log_type         = "slow-log"
  }
}
