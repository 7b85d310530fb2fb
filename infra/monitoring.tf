# Alarms, their topic and the stage's dashboard. Every alarm notifies the
# topic on ALARM and on OK (so a mail also says when it is over); what each
# one means and what to do is in its description and in docs/deploy.md,
# "Monitoring". Thresholds are variables (variables.tf, "monitoring").
#
# What the metrics are called, and where they come from:
# * the app's own per-request metrics, one Embedded Metric Format line per
#   request in the API Lambda's log group (chalicelib/web.py): namespace
#   Messaging, Latency (ms) and DbStatements, DbRoundTrips, RedisRoundTrips,
#   by [Service], [Service, Route] and [Service, Route, StatusClass], Service
#   being "<app_name>-<stage>" (local.name: name_prefix equals app_name);
# * API Gateway (REST): AWS/ApiGateway by ApiName and Stage. Chalice names
#   the REST API after the app (its swagger title, app_name), the same for
#   every stage, so two stages in one account and region add up in these;
#   the EMF metrics and everything else here are per stage;
# * Lambda by FunctionName, Aurora by DBInstanceIdentifier (one alarm per
#   instance: the writer's capacity is what runs out, and an average over the
#   cluster would halve it with a reader), ElastiCache by CacheClusterId (one
#   per node of the replication group: its member clusters).

locals {
  emf_namespace = "Messaging"
  emf_service   = local.name
  api_name      = var.name_prefix

  # Every alarm looks at 5-minute periods: long enough that one slow or
  # failed request is not a trend, short enough to page within 15 minutes.
  alarm_period  = 300
  alarm_actions = [aws_sns_topic.alarms.arn]

  # local.lambda_functions (locals.tf): Chalice function name (lambda.tf's
  # log groups) -> Lambda function name, for every function.

  # purge runs once an hour, and a failed run is retried by Lambda twice
  # (asynchronous invocation) a few minutes apart: its errors may never
  # reach alarm_lambda_errors in one 5-minute period, so any error alarms.
  lambda_error_thresholds = { for f in keys(local.lambda_functions) : f => f == local.functions.purge ? 0 : var.alarm_lambda_errors }

  # The member clusters ("<replication group id>-001", "-002") are known only
  # once the group exists, so the alarms count nodes (num_cache_clusters in
  # cache.tf) and take the ids, sorted, from the group.
  redis_node_ids   = sort(aws_elasticache_replication_group.this.member_clusters)
  db_instance_ids  = aws_rds_cluster_instance.this[*].identifier
  acu_alarm_at     = var.aurora_max_acu * var.alarm_aurora_acu_percent / 100
  latency_route_id = { for r in var.alarm_latency_routes : r => trim(replace(replace(replace(r, "/", "-"), "{", ""), "}", ""), "-") }
}

# ---------------------------------------------------------------- topic

resource "aws_sns_topic" "alarms" {
  name              = local.alarm_topic_name
  display_name      = "${local.name} alarms"
  kms_master_key_id = aws_kms_key.this.arn
}

# Only this stack's alarms may publish (the default topic policy would let
# any principal of the account that has sns:Publish); administration stays
# with the account's IAM policies, which same-account access needs anyway.
resource "aws_sns_topic_policy" "alarms" {
  arn = aws_sns_topic.alarms.arn

  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "ThisStacksAlarmsPublish"
      Effect    = "Allow"
      Principal = { Service = "cloudwatch.amazonaws.com" }
      Action    = "sns:Publish"
      Resource  = aws_sns_topic.alarms.arn
      Condition = {
        StringEquals = { "aws:SourceAccount" = local.account_id }
        ArnLike      = { "aws:SourceArn" = "arn:${local.partition}:cloudwatch:${var.region}:${local.account_id}:alarm:${local.name}-*" }
      }
    }]
  })
}

# Pending until the address clicks the link SNS mails it. A pending
# subscription cannot be deleted by Terraform; SNS drops it after 3 days.
resource "aws_sns_topic_subscription" "alarm_email" {
  count = var.alarm_email == "" ? 0 : 1

  topic_arn = aws_sns_topic.alarms.arn
  protocol  = "email"
  endpoint  = var.alarm_email
}

# ---------------------------------------------------------------- API

resource "aws_cloudwatch_metric_alarm" "api_5xx_rate" {
  alarm_name        = "${local.name}-api-5xx-rate"
  alarm_description = "More than ${var.alarm_5xx_rate_percent}% of the REST API's requests (stage ${var.api_gateway_stage}) got a 5xx in 2 of the last 3 periods of 5 minutes (periods under ${var.alarm_5xx_min_requests} requests count as fine). Clients fail. Look at the dashboard: 5xx by route (which route), Lambda errors/throttles (containers crashing or all busy), Aurora and Redis (a backend down or full). Then the API Lambda's log group: the app logs each 500 with a request id. Recent deploy? Roll back."

  comparison_operator = "GreaterThanThreshold"
  threshold           = var.alarm_5xx_rate_percent
  evaluation_periods  = 3
  datapoints_to_alarm = 2
  # No requests at all is a quiet API, not a failing one.
  treat_missing_data = "notBreaching"
  alarm_actions      = local.alarm_actions
  ok_actions         = local.alarm_actions

  metric_query {
    id          = "rate"
    expression  = "IF(requests >= ${var.alarm_5xx_min_requests}, 100 * errors / requests, 0)"
    label       = "5xx, % of requests"
    return_data = true
  }

  metric_query {
    id = "errors"
    metric {
      namespace   = "AWS/ApiGateway"
      metric_name = "5XXError"
      period      = local.alarm_period
      stat        = "Sum"
      dimensions  = { ApiName = local.api_name, Stage = var.api_gateway_stage }
    }
  }

  metric_query {
    id = "requests"
    metric {
      namespace   = "AWS/ApiGateway"
      metric_name = "Count"
      period      = local.alarm_period
      # The API Gateway guide: "The SampleCount statistic represents this metric".
      stat       = "SampleCount"
      dimensions = { ApiName = local.api_name, Stage = var.api_gateway_stage }
    }
  }
}

# One per route: a long-poll (/read_messages with wait) takes up to 20 s by
# design, so a p99 over all routes would alarm whenever clients poll.
resource "aws_cloudwatch_metric_alarm" "api_latency" {
  for_each = toset(var.alarm_latency_routes)

  alarm_name        = "${local.name}-api-p99-latency-${local.latency_route_id[each.key]}"
  alarm_description = "p99 latency of ${each.key} as the app measures it (EMF Messaging/Latency, handler time) above ${var.alarm_latency_p99_ms} ms for 15 minutes (periods under ${var.alarm_latency_min_requests} requests count as fine). Users wait. Look at the dashboard: DB statements and round trips per request, Aurora ACU near its maximum (raise aurora_max_acu), Aurora connections, Redis CPU; the Aurora slow query log (/aws/rds/cluster/${local.name}/slowquery)."

  comparison_operator = "GreaterThanThreshold"
  threshold           = var.alarm_latency_p99_ms
  evaluation_periods  = 3
  datapoints_to_alarm = 3
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  metric_query {
    id          = "guarded"
    expression  = "IF(requests >= ${var.alarm_latency_min_requests}, p99, 0)"
    label       = "p99 ${each.key} (ms)"
    return_data = true
  }

  metric_query {
    id = "p99"
    metric {
      namespace   = local.emf_namespace
      metric_name = "Latency"
      period      = local.alarm_period
      stat        = "p99"
      dimensions  = { Service = local.emf_service, Route = each.key }
    }
  }

  metric_query {
    id = "requests"
    metric {
      namespace   = local.emf_namespace
      metric_name = "Latency"
      period      = local.alarm_period
      stat        = "SampleCount"
      dimensions  = { Service = local.emf_service, Route = each.key }
    }
  }
}

# ---------------------------------------------------------------- Lambda

resource "aws_cloudwatch_metric_alarm" "lambda_errors" {
  for_each = local.lambda_functions

  alarm_name        = "${each.value}-errors"
  alarm_description = "More than ${local.lambda_error_thresholds[each.key]} function errors of ${each.value} in 5 minutes (it clears after 10 quiet minutes). Function errors are crashes, timeouts and out-of-memory, not the app's own error answers. Look at the function's log group (/aws/lambda/${each.value}): 'Task timed out' (a backend too slow: Aurora, Redis, Secrets Manager), a traceback, 'Runtime exited'. migrate: a failed migration, see docs/deploy.md. push: posts to @connections failing. purge: the hourly retention run failed; the next one goes on where it stopped."

  namespace           = "AWS/Lambda"
  metric_name         = "Errors"
  dimensions          = { FunctionName = each.value }
  statistic           = "Sum"
  period              = local.alarm_period
  comparison_operator = "GreaterThanThreshold"
  threshold           = local.lambda_error_thresholds[each.key]
  # 1 of 2: alarms at once, clears only after two clean periods (no flapping).
  evaluation_periods  = 2
  datapoints_to_alarm = 1
  # Lambda reports nothing while a function is not invoked.
  treat_missing_data = "notBreaching"
  alarm_actions      = local.alarm_actions
  ok_actions         = local.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "api_throttles" {
  alarm_name        = "${local.name}-api-throttles"
  alarm_description = "More than ${var.alarm_api_throttles} invocations of the API Lambda ${local.name} throttled in 5 minutes: all ${var.api_reserved_concurrency} reserved containers (api_reserved_concurrency) were busy, and clients got a 5xx from API Gateway. Look at the dashboard: concurrency at the reservation because requests got slow (latency, Aurora) or because many clients long-poll (move them to push), or real growth. Raise api_reserved_concurrency only with what Aurora can take (docs/deploy.md, 'What protects the database')."

  namespace           = "AWS/Lambda"
  metric_name         = "Throttles"
  dimensions          = { FunctionName = local.name }
  statistic           = "Sum"
  period              = local.alarm_period
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.alarm_api_throttles
  evaluation_periods  = 2
  datapoints_to_alarm = 1
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

# ---------------------------------------------------------------- Aurora

resource "aws_cloudwatch_metric_alarm" "aurora_capacity" {
  count = var.aurora_instance_count

  alarm_name        = "${local.db_instance_ids[count.index]}-acu-near-max"
  alarm_description = "Aurora instance ${local.db_instance_ids[count.index]} at or above ${local.acu_alarm_at} ACU (${var.alarm_aurora_acu_percent}% of aurora_max_acu = ${var.aurora_max_acu}) for 15 minutes: it cannot grow much more, and queries will queue. Look at the slow query log and Performance Insights (top SQL), and the dashboard's DB statements per request. If the load is real, raise aurora_max_acu and apply (no downtime)."

  namespace           = "AWS/RDS"
  metric_name         = "ServerlessDatabaseCapacity"
  dimensions          = { DBInstanceIdentifier = local.db_instance_ids[count.index] }
  statistic           = "Average"
  period              = local.alarm_period
  comparison_operator = "GreaterThanOrEqualToThreshold"
  threshold           = local.acu_alarm_at
  evaluation_periods  = 3
  datapoints_to_alarm = 3
  # Reported every minute while the instance runs: a gap shows as
  # INSUFFICIENT_DATA on the dashboard rather than as fine.
  treat_missing_data = "missing"
  alarm_actions      = local.alarm_actions
  ok_actions         = local.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "aurora_connections" {
  count = var.aurora_instance_count

  alarm_name        = "${local.db_instance_ids[count.index]}-connections"
  alarm_description = "More than ${var.alarm_db_connections} connections on Aurora instance ${local.db_instance_ids[count.index]} in 2 of 3 periods of 5 minutes. The API opens at most ${var.api_reserved_concurrency} (api_reserved_concurrency) and migrate 1, so something else connects or connections leak. Look at SHOW PROCESSLIST (user and host: messaging_app is the API, the master user is migrate), the audit log (/aws/rds/cluster/${local.name}/audit) for CONNECT; a raised api_reserved_concurrency needs alarm_db_connections raised too."

  namespace           = "AWS/RDS"
  metric_name         = "DatabaseConnections"
  dimensions          = { DBInstanceIdentifier = local.db_instance_ids[count.index] }
  statistic           = "Maximum"
  period              = local.alarm_period
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.alarm_db_connections
  evaluation_periods  = 3
  datapoints_to_alarm = 2
  treat_missing_data  = "missing"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  lifecycle {
    precondition {
      # + 2: migrate's connection while a deploy runs it, purge's while its hourly run lasts.
      condition     = var.alarm_db_connections > var.api_reserved_concurrency + 2
      error_message = "alarm_db_connections must exceed api_reserved_concurrency + 2 (the API's containers, migrate and purge): at full load the alarm would fire on the app itself."
    }
  }
}

# ---------------------------------------------------------------- ElastiCache

resource "aws_cloudwatch_metric_alarm" "redis_memory" {
  count = var.az_count

  alarm_name        = "${local.name}-redis-memory-${count.index + 1}"
  alarm_description = "Redis node ${count.index + 1} of ${local.name} (the primary or the replica) above ${var.alarm_redis_memory_percent}% of its memory for 15 minutes. Full, it evicts keys with a TTL (cached inboxes, which refill from Aurora) and refuses writes of keys without one (rate limits, connection ids, seqs). Look at the dashboard's evictions; find large keys (redis-cli --bigkeys); lower CACHE_SIZE or CACHE_TTL_SECONDS, or move to a larger redis_node_type (apply, a failover)."

  namespace           = "AWS/ElastiCache"
  metric_name         = "DatabaseMemoryUsagePercentage"
  dimensions          = { CacheClusterId = local.redis_node_ids[count.index] }
  statistic           = "Average"
  period              = local.alarm_period
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.alarm_redis_memory_percent
  evaluation_periods  = 3
  datapoints_to_alarm = 3
  treat_missing_data  = "missing"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "redis_evictions" {
  count = var.az_count

  alarm_name        = "${local.name}-redis-evictions-${count.index + 1}"
  alarm_description = "Redis node ${count.index + 1} of ${local.name} evicted keys in the last 5 minutes (it clears after 10 quiet minutes): memory is full. Reads that miss the cache go to Aurora (slower, more ACU). Act as for the memory alarm: the dashboard's memory, large keys, CACHE_SIZE / CACHE_TTL_SECONDS, or a larger redis_node_type."

  namespace           = "AWS/ElastiCache"
  metric_name         = "Evictions"
  dimensions          = { CacheClusterId = local.redis_node_ids[count.index] }
  statistic           = "Sum"
  period              = local.alarm_period
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  evaluation_periods  = 2
  datapoints_to_alarm = 1
  treat_missing_data  = "missing"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

# ---------------------------------------------------------------- dashboard

locals {
  alarm_arns = concat(
    [aws_cloudwatch_metric_alarm.api_5xx_rate.arn, aws_cloudwatch_metric_alarm.api_throttles.arn],
    [for a in aws_cloudwatch_metric_alarm.api_latency : a.arn],
    [for a in aws_cloudwatch_metric_alarm.lambda_errors : a.arn],
    aws_cloudwatch_metric_alarm.aurora_capacity[*].arn,
    aws_cloudwatch_metric_alarm.aurora_connections[*].arn,
    aws_cloudwatch_metric_alarm.redis_memory[*].arn,
    aws_cloudwatch_metric_alarm.redis_evictions[*].arn,
  )
}

# The widgets are in templates/dashboard.json.tftpl (one jsonencode, a
# 24-column grid, the alarms on top): requests, 5xx and p99 latency by route
# from the app's EMF metrics, latency and status classes at API Gateway,
# Lambda errors by function and the API's concurrency, Aurora ACU and
# connections, the work per request, Redis memory, evictions and CPU; each
# alarm threshold drawn where it applies.
resource "aws_cloudwatch_dashboard" "this" {
  dashboard_name = local.name
  dashboard_body = templatefile("${path.module}/templates/dashboard.json.tftpl", {
    region                     = var.region
    alarm_arns                 = local.alarm_arns
    emf_namespace              = local.emf_namespace
    emf_service                = local.emf_service
    api_name                   = local.api_name
    api_gateway_stage          = var.api_gateway_stage
    api_function               = local.name
    lambda_functions           = local.lambda_functions
    db_instance_ids            = local.db_instance_ids
    redis_node_ids             = local.redis_node_ids
    api_reserved_concurrency   = var.api_reserved_concurrency
    aurora_max_acu             = var.aurora_max_acu
    acu_alarm_at               = local.acu_alarm_at
    alarm_latency_p99_ms       = var.alarm_latency_p99_ms
    alarm_db_connections       = var.alarm_db_connections
    alarm_redis_memory_percent = var.alarm_redis_memory_percent
  })
}
