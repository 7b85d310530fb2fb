# Read by the config renderer, scripts/deploy/render/ (terraform output
# -json). None is secret: secrets stay in Secrets Manager and only their ARNs
# leave here.

output "region" {
  description = "AWS region everything was created in."
  value       = var.region
}

output "stage" {
  description = "Deployment stage; the Chalice stage the outputs are rendered into."
  value       = var.stage
}

output "vpc_id" {
  description = "ID of the VPC."
  value       = aws_vpc.this.id
}

output "subnet_ids" {
  description = "IDs of the two private subnets (one per AZ) for the Lambda's VPC config."
  value       = aws_subnet.private[*].id
}

output "lambda_security_group_id" {
  description = "Security group to attach to every in-VPC Lambda (all but push): egress only to MySQL, Redis and the Secrets Manager and Lambda endpoints."
  value       = aws_security_group.lambda.id
}

output "db_endpoint" {
  description = "Host name the app connects to: the RDS Proxy endpoint when enable_rds_proxy, else the cluster's writer endpoint."
  value       = var.enable_rds_proxy ? aws_db_proxy.this[0].endpoint : aws_rds_cluster.this.endpoint
}

output "db_port" {
  description = "MySQL port of db_endpoint."
  value       = aws_rds_cluster.this.port
}

output "db_name" {
  description = "Name of the application database."
  value       = aws_rds_cluster.this.database_name
}

output "db_secret_arn" {
  description = "ARN of the RDS-managed master user secret (JSON with username and password): DB_SECRET_ARN of migrate only."
  value       = local.db_secret_arn
}

output "db_app_secret_arn" {
  description = "ARN of the secret of the MySQL app user (JSON with username and password; DML on the app's tables only): DB_SECRET_ARN of the API, the WebSocket handlers, forget_connections and purge, APP_DB_SECRET_ARN of migrate, which creates the user."
  value       = local.db_app_secret_arn
}

output "redis_endpoint" {
  description = "Primary endpoint of the ElastiCache replication group (follows failovers)."
  value       = aws_elasticache_replication_group.this.primary_endpoint_address
}

output "redis_port" {
  description = "Port of redis_endpoint (TLS only)."
  value       = aws_elasticache_replication_group.this.port
}

output "redis_secret_arn" {
  description = "ARN of the secret holding the ElastiCache AUTH token (plain text), for REDIS_SECRET_ARN."
  value       = aws_secretsmanager_secret.redis_auth.arn
}

output "auth_secret_arn" {
  description = "ARN of the secret holding the API token signing secrets (whitespace-separated, newest first), for AUTH_SECRET_ARN."
  value       = aws_secretsmanager_secret.auth.arn
}

output "kms_key_arn" {
  description = "ARN of the customer managed KMS key that encrypts the secrets (the Lambda needs kms:Decrypt on it via Secrets Manager)."
  value       = aws_kms_key.this.arn
}

output "lambda_log_group_name" {
  description = "CloudWatch log group created for the Chalice Lambda \"<name_prefix>-<stage>\"."
  value       = aws_cloudwatch_log_group.lambda.name
}

output "migrate_log_group_name" {
  description = "CloudWatch log group created for the Chalice migrate Lambda \"<name_prefix>-<stage>-migrate\"."
  value       = aws_cloudwatch_log_group.migrate.name
}

output "function_log_group_names" {
  description = "CloudWatch log groups created for every function but the API handler and migrate, by Chalice function name: push, forget_connections, the WebSocket handlers websocket_connect, websocket_message, websocket_disconnect, and purge (\"/aws/lambda/<name_prefix>-<stage>-<function>\")."
  value       = { for function, group in aws_cloudwatch_log_group.function : function => group.name }
}

output "push_function_name" {
  description = "Name of the push Lambda (\"<name_prefix>-<stage>-push\"), the only function the Lambda VPC endpoint's policy lets the VPC invoke; the renderer writes it into PUSH_FUNCTION."
  value       = local.push_function_name
}

# Attachments (attachments.tf): the renderer sets ATTACHMENTS_BUCKET on the
# API handler and purge only, and lets their roles (and no other) reach
# attachments/* of the bucket and, the API's, use the key through S3.

output "attachments_bucket_name" {
  description = "Name of the private attachments bucket (objects attachments/uploads/ and attachments/files/<uploader_id>/<attachment_id>): ATTACHMENTS_BUCKET of the API handler and purge."
  value       = aws_s3_bucket.attachments.id
}

output "attachments_bucket_arn" {
  description = "ARN of the attachments bucket; the rendered policies grant the API handler and purge objects under attachments/ only."
  value       = aws_s3_bucket.attachments.arn
}

output "attachments_kms_key_arn" {
  description = "ARN of the KMS key the attachments are encrypted with (the bucket's default SSE-KMS, with a bucket key): the API role may GenerateDataKey (presigned uploads) and Decrypt (presigned downloads) through S3 only."
  value       = aws_kms_key.this.arn
}

# Chalice cannot express these in Terraform: the renderer writes the reserved
# concurrency into the Chalice stage, the deploy (scripts/deploy/) sets the
# throttling on the API Gateway stages, REST and WebSocket, after
# `chalice deploy`.

output "api_throttle_rate_limit" {
  description = "API Gateway stage throttling, steady-state requests per second (var.api_throttle_rate_limit)."
  value       = var.api_throttle_rate_limit
}

output "api_throttle_burst_limit" {
  description = "API Gateway stage throttling, burst (var.api_throttle_burst_limit)."
  value       = var.api_throttle_burst_limit
}

output "websocket_throttle_rate_limit" {
  description = "WebSocket API stage throttling, steady-state messages per second, set as the stage's DefaultRouteSettings (var.websocket_throttle_rate_limit)."
  value       = var.websocket_throttle_rate_limit
}

output "websocket_throttle_burst_limit" {
  description = "WebSocket API stage throttling, burst, set as the stage's DefaultRouteSettings (var.websocket_throttle_burst_limit)."
  value       = var.websocket_throttle_burst_limit
}

output "api_reserved_concurrency" {
  description = "Reserved concurrency of the API handler Lambda only (var.api_reserved_concurrency)."
  value       = var.api_reserved_concurrency
}

output "retention_days" {
  description = "Days a message is kept (var.retention_days; 0: every message): the renderer sets RETENTION_DAYS on the purge Lambda only, and none when 0."
  value       = var.retention_days
}

# Monitoring (monitoring.tf). The renderer checks the Chalice stage against
# api_gateway_stage: the API Gateway alarm and widgets select that stage.

output "api_gateway_stage" {
  description = "API Gateway stage of the REST API that the 5xx alarm and the dashboard watch (var.api_gateway_stage); the renderer requires the Chalice stage's api_gateway_stage to equal it."
  value       = var.api_gateway_stage
}

output "alarm_topic_arn" {
  description = "ARN of the SNS topic every alarm notifies (KMS-encrypted); subscribe to it (docs/deploy.md, \"Monitoring\")."
  value       = aws_sns_topic.alarms.arn
}

output "dashboard_name" {
  description = "Name of the stage's CloudWatch dashboard."
  value       = aws_cloudwatch_dashboard.this.dashboard_name
}
