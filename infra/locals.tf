locals {
  # Also the Lambda function name Chalice deploys ("<app_name>-<stage>"), so
  # name_prefix should equal app_name in .chalice/config.json.
  name = "${var.name_prefix}-${var.stage}"

  tags = merge(
    {
      Project   = var.name_prefix
      Stage     = var.stage
      ManagedBy = "terraform"
      Component = "messaging-backend"
    },
    var.tags,
  )

  # Pinned by name (default <region>a and <region>b), so a zone AWS adds later
  # never moves a subnet; the data source below checks they exist and are up.
  azs = length(var.availability_zones) > 0 ? var.availability_zones : [for suffix in ["a", "b"] : "${var.region}${suffix}"]

  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  dns_suffix = data.aws_partition.current.dns_suffix

  db_port    = 3306
  redis_port = 6379

  # ElastiCache default parameter group of the engine's major version:
  # default.valkey7 / default.redis7 (cluster mode disabled).
  redis_parameter_group = "default.${var.redis_engine}${split(".", var.redis_engine_version)[0]}"

  # The RDS-managed master user secret (username/password JSON), rotated by RDS.
  db_secret_arn = aws_rds_cluster.this.master_user_secret[0].secret_arn

  # The MySQL user the API connects as (DML only); migrate creates it.
  db_app_secret_arn = aws_secretsmanager_secret.db_app.arn

  app_secret_arns = [
    local.db_secret_arn,
    local.db_app_secret_arn,
    aws_secretsmanager_secret.redis_auth.arn,
    aws_secretsmanager_secret.auth.arn,
  ]

  db_log_exports = ["audit", "error", "slowquery"]

  # The app's Lambda functions by Chalice's names (their keys in
  # .chalice/config.json lambda_functions, and the suffix of
  # "<name>-<function>"), from the one list app.py, the deploy and its
  # renderer read too: { api_handler = "api_handler", migrate = "migrate",
  # websocket_handlers = [...], forget_connections = ..., push = ..., purge = ... }.
  functions = jsondecode(file("${path.module}/../chalicelib/functions.json")).functions

  # Every function, and its Lambda function name: "<name>" for the API
  # handler, "<name>-<function>" for the rest (as Chalice names them).
  lambda_functions = { for f in flatten(values(local.functions)) : f => f == local.functions.api_handler ? local.name : "${local.name}-${f}" }

  # Every function but the API handler and migrate (those have groups, and
  # outputs, of their own): the ones push brought (the in-VPC WebSocket
  # handlers and forget_connections, push outside the VPC), the hourly purge
  # (@app.schedule in app.py) and any added to the list later. Each gets its
  # log group in lambda.tf; every function gets an errors alarm in
  # monitoring.tf.
  extra_functions = setsubtract(keys(local.lambda_functions), [local.functions.api_handler, local.functions.migrate])

  # The one function the VPC may invoke through its Lambda endpoint
  # (network.tf): the API hands posting to it asynchronously.
  push_function_name = local.lambda_functions[local.functions.push]
  push_function_arn  = "arn:${local.partition}:lambda:${var.region}:${local.account_id}:function:${local.push_function_name}"

  # The alarm topic (monitoring.tf), by name: the KMS key policy (secrets.tf)
  # names it, and the topic is encrypted with that key, so its ARN cannot be
  # read off the resource there.
  alarm_topic_name = "${local.name}-alarms"
  alarm_topic_arn  = "arn:${local.partition}:sns:${var.region}:${local.account_id}:${local.alarm_topic_name}"
}

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

data "aws_availability_zones" "pinned" {
  state = "available"

  filter {
    name   = "zone-name"
    values = local.azs
  }

  lifecycle {
    postcondition {
      condition     = length(self.names) == var.az_count
      error_message = "Every zone in availability_zones (default <region>a, <region>b) must exist and be available in this region."
    }
  }
}
