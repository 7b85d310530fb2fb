# ---------------------------------------------------------------- general

variable "region" {
  description = "AWS region to deploy into, e.g. us-east-1. Must offer Aurora Serverless v2 and ElastiCache in at least two availability zones."
  type        = string
  default     = "us-east-1"

  validation {
    condition     = can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", var.region))
    error_message = "region must look like us-east-1 or us-gov-west-1."
  }
}

variable "stage" {
  description = "Deployment stage; part of every resource name and must equal the Chalice stage the outputs are rendered into (make deploy STAGE=<stage> sets both)."
  type        = string
  default     = "prod"

  validation {
    condition     = can(regex("^[a-z][a-z0-9]{1,9}$", var.stage))
    error_message = "stage must be 2-10 lowercase letters or digits, starting with a letter."
  }
}

variable "name_prefix" {
  description = "Prefix of every resource name. Keep it equal to app_name in .chalice/config.json: \"<name_prefix>-<stage>\" and \"<name_prefix>-<stage>-<function>\" are the Lambda function names whose log groups are created here, and the push function the Lambda endpoint's policy names."
  type        = string
  default     = "messaging"

  validation {
    # ElastiCache replication group ids are at most 40 characters: prefix + "-" + stage must fit.
    condition     = can(regex("^[a-z][a-z0-9]*(-[a-z0-9]+)*$", var.name_prefix)) && length(var.name_prefix) <= 24
    error_message = "name_prefix must be at most 24 lowercase letters, digits and single hyphens, starting with a letter."
  }
}

variable "tags" {
  description = "Extra tags merged into the provider default_tags of every resource."
  type        = map(string)
  default     = {}
}

# ---------------------------------------------------------------- network

variable "vpc_cidr" {
  description = "IPv4 CIDR of the VPC. Each of the two private subnets gets one sixteenth of it."
  type        = string
  default     = "10.42.0.0/16"

  validation {
    condition     = can(cidrhost(var.vpc_cidr, 0)) && tonumber(split("/", var.vpc_cidr)[1]) >= 16 && tonumber(split("/", var.vpc_cidr)[1]) <= 22
    error_message = "vpc_cidr must be a valid IPv4 CIDR with a prefix length from /16 to /22."
  }
}

variable "az_count" {
  description = "Number of availability zones (one private subnet each). Fixed at 2: the Aurora subnet group and the ElastiCache primary + replica span exactly two AZs."
  type        = number
  default     = 2

  validation {
    condition     = var.az_count == 2
    error_message = "az_count is fixed at 2."
  }
}

variable "availability_zones" {
  description = "Availability zone names to use, exactly az_count of them; empty = \"<region>a\" and \"<region>b\". Pinned by name so subnets never move when AWS adds a zone."
  type        = list(string)
  default     = []

  validation {
    condition     = length(var.availability_zones) == 0 || length(var.availability_zones) == 2
    error_message = "availability_zones must be empty or list exactly 2 zones."
  }
}

# ---------------------------------------------------------------- Aurora MySQL

variable "aurora_engine_version" {
  description = "Aurora MySQL 3.x (MySQL 8.0 compatible) engine version, e.g. 8.0.mysql_aurora.3.08.2. Must support Serverless v2 in the region."
  type        = string
  default     = "8.0.mysql_aurora.3.08.2"

  validation {
    condition     = can(regex("^8\\.0\\.mysql_aurora\\.3\\.[0-9]{2}\\.[0-9]+$", var.aurora_engine_version))
    error_message = "aurora_engine_version must be an Aurora MySQL 3.x version such as 8.0.mysql_aurora.3.08.2."
  }
}

variable "aurora_min_acu" {
  description = "Serverless v2 minimum capacity in Aurora capacity units (0.5 steps). 0.5 keeps idle cost low; raise it if cold scaling hurts latency."
  type        = number
  default     = 0.5

  validation {
    condition     = var.aurora_min_acu >= 0.5 && var.aurora_min_acu <= 256 && floor(var.aurora_min_acu * 2) == var.aurora_min_acu * 2
    error_message = "aurora_min_acu must be between 0.5 and 256 in steps of 0.5."
  }
}

variable "aurora_max_acu" {
  description = "Serverless v2 maximum capacity in Aurora capacity units (0.5 steps); must be >= aurora_min_acu."
  type        = number
  default     = 16

  validation {
    condition     = var.aurora_max_acu >= 1 && var.aurora_max_acu <= 256 && floor(var.aurora_max_acu * 2) == var.aurora_max_acu * 2
    error_message = "aurora_max_acu must be between 1 and 256 in steps of 0.5."
  }
}

variable "aurora_instance_count" {
  description = "Number of db.serverless instances (the first is the writer). 1 as specified; 2 puts a reader in the second AZ so a failover takes seconds instead of an instance rebuild."
  type        = number
  default     = 1

  validation {
    condition     = var.aurora_instance_count >= 1 && var.aurora_instance_count <= 3 && floor(var.aurora_instance_count) == var.aurora_instance_count
    error_message = "aurora_instance_count must be 1, 2 or 3."
  }
}

variable "db_name" {
  description = "Name of the application database created in the cluster (the path of DATABASE_URL)."
  type        = string
  default     = "messaging"

  validation {
    condition     = can(regex("^[A-Za-z][A-Za-z0-9_]{0,63}$", var.db_name))
    error_message = "db_name must start with a letter and contain at most 64 letters, digits or underscores."
  }
}

variable "db_master_username" {
  description = "Master user name. Its password is generated, stored and rotated by RDS in Secrets Manager (manage_master_user_password); Terraform never sees it."
  type        = string
  default     = "app_admin"

  validation {
    condition     = can(regex("^[A-Za-z][A-Za-z0-9_]{0,15}$", var.db_master_username)) && !contains(["rdsadmin", "root", "admin"], lower(var.db_master_username))
    error_message = "db_master_username must be 1-16 letters, digits or underscores, start with a letter, and not be a reserved name (rdsadmin, root, admin)."
  }
}

variable "backup_retention_days" {
  description = "Days of automated Aurora backups (point-in-time restore window)."
  type        = number
  default     = 14

  validation {
    condition     = var.backup_retention_days >= 1 && var.backup_retention_days <= 35
    error_message = "backup_retention_days must be between 1 and 35."
  }
}

variable "db_backtrack_hours" {
  description = "Aurora MySQL backtrack window in hours (rewind the cluster in minutes without a restore). Can only be turned on at cluster creation; 0 turns it off for good."
  type        = number
  default     = 24

  validation {
    condition     = var.db_backtrack_hours >= 0 && var.db_backtrack_hours <= 72 && floor(var.db_backtrack_hours) == var.db_backtrack_hours
    error_message = "db_backtrack_hours must be a whole number from 0 to 72."
  }
}

variable "db_monitoring_interval" {
  description = "Enhanced Monitoring interval in seconds for the Aurora instances (0 disables it)."
  type        = number
  default     = 60

  validation {
    condition     = contains([0, 1, 5, 10, 15, 30, 60], var.db_monitoring_interval)
    error_message = "db_monitoring_interval must be one of 0, 1, 5, 10, 15, 30, 60."
  }
}

variable "deletion_protection" {
  description = "Protect the Aurora cluster from deletion. Set false (and apply) only right before an intended destroy."
  type        = bool
  default     = true
}

variable "skip_final_snapshot" {
  description = "Delete the Aurora cluster without a final snapshot on destroy. false keeps one (\"<name_prefix>-<stage>-final-<hex>\"), which outlives the stack, is billed as snapshot storage and is encrypted with the stack's KMS key. Apply a change before the destroy: a destroy uses the value last applied."
  type        = bool
  default     = false
}

variable "db_app_username" {
  description = "MySQL user the deployed API (and the WebSocket handlers, forget_connections, purge) connects as: DML on the app's tables only. The migrate Lambda, which connects as the master user, creates it and sets its password from the secret db_app_secret_arn (JSON {\"username\", \"password\"}); Terraform writes the password write-only."
  type        = string
  default     = "messaging_app"

  validation {
    condition     = can(regex("^[A-Za-z][A-Za-z0-9_]{0,31}$", var.db_app_username)) && !contains(["rdsadmin", "root", "admin", "rdsrepladmin", "rdsproxyadmin"], lower(var.db_app_username))
    error_message = "db_app_username must be 1-32 letters, digits or underscores, start with a letter, and not be a reserved name (rdsadmin, root, admin, rdsrepladmin, rdsproxyadmin)."
  }
}

variable "db_app_password_generation" {
  description = "Increase by one to rotate the app user's password: the apply writes a new random password into its secret and the migrate step of the next make deploy sets it on the user. In between (the minutes of that deploy), a newly started API container reads the new password and cannot connect until migrate has run; running containers keep their connections."
  type        = number
  default     = 1

  validation {
    condition     = var.db_app_password_generation >= 1 && floor(var.db_app_password_generation) == var.db_app_password_generation
    error_message = "db_app_password_generation must be a positive whole number."
  }
}

variable "enable_rds_proxy" {
  description = "Put an RDS Proxy (TLS required, authenticating with the RDS-managed master secret and the app user's secret) in front of the cluster for Lambda connection pooling. db_endpoint then points at the proxy."
  type        = bool
  default     = false
}

# ---------------------------------------------------------------- ElastiCache

variable "redis_engine" {
  description = "ElastiCache engine: valkey (Redis OSS 7.2 compatible, cheaper) or redis."
  type        = string
  default     = "valkey"

  validation {
    condition     = contains(["valkey", "redis"], var.redis_engine)
    error_message = "redis_engine must be valkey or redis."
  }
}

variable "redis_engine_version" {
  description = "Engine version, major.minor of the 7.x line (valkey 7.2, redis 7.1)."
  type        = string
  default     = "7.2"

  validation {
    condition     = can(regex("^7\\.[0-9]+$", var.redis_engine_version))
    error_message = "redis_engine_version must be a 7.x major.minor version such as 7.2."
  }
}

variable "redis_node_type" {
  description = "ElastiCache node type of the primary and the replica, e.g. cache.t4g.small."
  type        = string
  default     = "cache.t4g.small"

  validation {
    condition     = can(regex("^cache\\.[a-z0-9]+\\.[a-z0-9]+$", var.redis_node_type)) && !startswith(var.redis_node_type, "cache.t1.") && !startswith(var.redis_node_type, "cache.t2.")
    error_message = "redis_node_type must be an ElastiCache node type (cache.<family>.<size>); t1/t2 cannot fail over automatically."
  }
}

# ---------------------------------------------------------------- API limits

# Not used by a resource here: Chalice owns the API Gateway stages and the
# Lambda, so these reach them through the outputs (the config renderer,
# scripts/deploy/render/, writes the reserved concurrency, the deploy sets the
# throttling of the REST and the WebSocket stage).

variable "api_throttle_rate_limit" {
  description = "API Gateway stage throttling: steady-state requests per second across all routes of the stage (token bucket refill rate); excess requests get API Gateway's own 429. At most 10,000, the default account limit per region shared by every API in the account."
  type        = number
  default     = 100

  validation {
    condition     = var.api_throttle_rate_limit > 0 && var.api_throttle_rate_limit <= 10000
    error_message = "api_throttle_rate_limit must be greater than 0 and at most 10000 requests per second."
  }
}

variable "api_throttle_burst_limit" {
  description = "API Gateway stage throttling: burst of requests served above the steady rate (token bucket size). At most 5,000, the default account burst per region."
  type        = number
  default     = 200

  validation {
    condition     = var.api_throttle_burst_limit >= 1 && var.api_throttle_burst_limit <= 5000 && floor(var.api_throttle_burst_limit) == var.api_throttle_burst_limit
    error_message = "api_throttle_burst_limit must be a whole number from 1 to 5000."
  }
}

variable "websocket_throttle_rate_limit" {
  description = "WebSocket API stage throttling (the stage's default route settings): steady-state messages per second across all routes of the stage, $connect and every client frame (token bucket refill rate); beyond it API Gateway refuses the message itself and no Lambda runs. Without it one client could make thousands of invocations a second: every frame costs a websocket_message invocation (the app's per-connection RATE_LIMIT_FRAMES_PER_MINUTE refuses a frame only inside that invocation) and its pong an asynchronous push invocation. 50 is 12,000 connections pinging every 4 minutes. One bucket shared by all clients: at the limit, further frames and connects are refused (a client refused at connect long-polls instead). Greater than 0 (0 refuses every message); at most 10,000, the default account limit per region shared by every API in the account."
  type        = number
  default     = 50

  validation {
    condition     = var.websocket_throttle_rate_limit > 0 && var.websocket_throttle_rate_limit <= 10000
    error_message = "websocket_throttle_rate_limit must be greater than 0 and at most 10000 messages per second."
  }
}

variable "websocket_throttle_burst_limit" {
  description = "WebSocket API stage throttling: burst of messages served above the steady rate (token bucket size), e.g. clients reconnecting together after a deploy or an outage. At least 1 (0 refuses every message); at most 5,000, the default account burst per region."
  type        = number
  default     = 100

  validation {
    condition     = var.websocket_throttle_burst_limit >= 1 && var.websocket_throttle_burst_limit <= 5000 && floor(var.websocket_throttle_burst_limit) == var.websocket_throttle_burst_limit
    error_message = "websocket_throttle_burst_limit must be a whole number from 1 to 5000."
  }
}

variable "api_reserved_concurrency" {
  description = "Reserved concurrency of the API Lambda (\"<name_prefix>-<stage>\"; no other function): at most this many containers, each holding one MySQL connection, so it caps the API's connections to Aurora (or the RDS Proxy). A waiting long-poll (/read_messages with wait, up to 20 s) holds one container all that time. Taken from the account's regional concurrency, of which Lambda keeps 100 unreserved (so at most 900 with the default quota of 1,000)."
  type        = number
  default     = 50

  validation {
    condition     = var.api_reserved_concurrency >= 1 && var.api_reserved_concurrency <= 1000 && floor(var.api_reserved_concurrency) == var.api_reserved_concurrency
    error_message = "api_reserved_concurrency must be a whole number from 1 to 1000 (0 would stop the API)."
  }
}

# ---------------------------------------------------------------- retention

# Like the API limits, an output only: the renderer writes it into the purge
# Lambda's RETENTION_DAYS (docs/deploy.md, "Retention").

variable "retention_days" {
  description = "Days a message is kept: the hourly purge Lambda deletes messages older than that (RETENTION_DAYS, set on the purge function only). 0 keeps every message (the purge then deletes nothing); otherwise 1 to 36500. Deleted messages stay in the Aurora backups for backup_retention_days and in the backtrack window for db_backtrack_hours."
  type        = number
  default     = 0

  validation {
    # The bounds the app accepts (chalicelib/settings.py, RETENTION_DAYS).
    condition     = floor(var.retention_days) == var.retention_days && (var.retention_days == 0 || (var.retention_days >= 1 && var.retention_days <= 36500))
    error_message = "retention_days must be 0 (keep every message) or a whole number of days from 1 to 36500."
  }
}

# ---------------------------------------------------------------- attachments

variable "rest_api_id" {
  description = "Id of the stage's REST API, which Chalice makes (its own origin, https://<id>.execute-api.<region>.amazonaws.com, serves the web client, which uploads to and downloads from the attachments bucket). Set by make deploy from .chalice/deployed/<stage>.json, the tf command likewise; empty before the first chalice deploy (the deploy then applies once more). Not for terraform.tfvars."
  type        = string
  default     = ""

  validation {
    # API Gateway ids: lowercase letters and digits (scripts/deploy/render/outputs.py, API_ID_PATTERN).
    condition     = can(regex("^[a-z0-9]{0,32}$", var.rest_api_id))
    error_message = "rest_api_id must be an API Gateway id (lowercase letters and digits) or empty."
  }
}

variable "attachments_cors_origins" {
  description = "Origins, besides the REST API's own (always allowed once rest_api_id is known), from which browsers may POST uploads to and GET downloads from the attachments bucket (its CORS rule), e.g. [\"https://chat.example.com\"] for a custom domain. Scheme and host (and port) only, no path, no wildcard; https only. Empty: the API's origin alone."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for o in var.attachments_cors_origins : can(regex("^https://[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]{1,5})?$", o))])
    error_message = "attachments_cors_origins must list origins such as https://chat.example.com: https, a lowercase host, an optional port, no path and no wildcard."
  }
}

# ---------------------------------------------------------------- logs, keys, secrets

variable "log_retention_days" {
  description = "Retention in days of every CloudWatch log group created here (database audit/error/slow query logs, VPC flow logs, cache slow log, the logs of every Lambda: API, migrate, push, forget_connections, WebSocket handlers, purge)."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a retention CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653)."
  }
}

variable "kms_deletion_window_days" {
  description = "Days between a destroy and the deletion of the customer managed KMS key (cancellable meanwhile). Everything it encrypted, a kept final snapshot included, is unreadable once the key is gone. Apply a change before the destroy."
  type        = number
  default     = 30

  validation {
    condition     = var.kms_deletion_window_days >= 7 && var.kms_deletion_window_days <= 30
    error_message = "kms_deletion_window_days must be between 7 and 30."
  }
}

variable "redis_auth_token_generation" {
  description = "Increase by one to rotate the ElastiCache AUTH token: a new token is generated, set on the replication group with the ROTATE strategy (old and new both valid) and stored in the secret."
  type        = number
  default     = 1

  validation {
    condition     = var.redis_auth_token_generation >= 1 && floor(var.redis_auth_token_generation) == var.redis_auth_token_generation
    error_message = "redis_auth_token_generation must be a positive whole number."
  }
}

variable "secret_recovery_window_days" {
  description = "Days a deleted Secrets Manager secret (Redis AUTH token, token-signing secret, database app user) can still be restored. Apply a change before the destroy."
  type        = number
  default     = 30

  validation {
    condition     = var.secret_recovery_window_days >= 7 && var.secret_recovery_window_days <= 30
    error_message = "secret_recovery_window_days must be between 7 and 30."
  }
}

# ---------------------------------------------------------------- monitoring (monitoring.tf)

variable "alarm_email" {
  description = "Address subscribed by email to the alarm topic (every alarm's ALARM and OK notifications); SNS mails a confirmation link first, and nothing arrives until it is clicked. Empty: no subscription (subscribe by hand, docs/deploy.md, \"Monitoring\")."
  type        = string
  default     = ""

  validation {
    condition     = var.alarm_email == "" || can(regex("^[^@[:space:]]+@[^@[:space:]]+\\.[^@[:space:]]+$", var.alarm_email))
    error_message = "alarm_email must be empty or an email address."
  }
}

variable "api_gateway_stage" {
  description = "API Gateway stage of the Chalice REST API (api_gateway_stage of the Chalice stage, Chalice's default api). The API Gateway alarm and widgets select it by the Stage dimension; the renderer refuses a Chalice stage whose api_gateway_stage differs, and sets it where none is set."
  type        = string
  default     = "api"

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,128}$", var.api_gateway_stage))
    error_message = "api_gateway_stage must be 1-128 letters, digits, hyphens or underscores."
  }
}

variable "alarm_5xx_rate_percent" {
  description = "API 5xx alarm: share of the REST API's requests answered with a 5xx (API Gateway 5XXError / Count, 5-minute periods) above which it alarms, in percent, when 2 of 3 periods exceed it."
  type        = number
  default     = 1

  validation {
    condition     = var.alarm_5xx_rate_percent > 0 && var.alarm_5xx_rate_percent <= 100
    error_message = "alarm_5xx_rate_percent must be greater than 0 and at most 100."
  }
}

variable "alarm_5xx_min_requests" {
  description = "API 5xx alarm: fewest requests in a 5-minute period for the rate to count; a quieter period counts as healthy (one failed request out of three is not an outage worth a page)."
  type        = number
  default     = 50

  validation {
    condition     = var.alarm_5xx_min_requests >= 1 && floor(var.alarm_5xx_min_requests) == var.alarm_5xx_min_requests
    error_message = "alarm_5xx_min_requests must be a whole number of at least 1."
  }
}

variable "alarm_latency_p99_ms" {
  description = "Latency alarms: p99 of the app's own per-request Latency (EMF metric Messaging/Latency of one route, 5-minute periods) above which a route's alarm fires, in milliseconds, when 3 periods in a row exceed it."
  type        = number
  default     = 1000

  validation {
    condition     = var.alarm_latency_p99_ms >= 10 && var.alarm_latency_p99_ms <= 29000
    error_message = "alarm_latency_p99_ms must be from 10 to 29000 (API Gateway's 29 s integration timeout)."
  }
}

variable "alarm_latency_routes" {
  description = "Routes with a p99 latency alarm each (Route dimension of the EMF metrics, the Chalice route pattern). Not /read_messages: a long-poll waits up to 20 s by design, so its latency says nothing about health (the dashboard shows it)."
  type        = list(string)
  default     = ["/register", "/send", "/send_group", "/block", "/create_group", "/update_group", "/connect_ticket"]

  validation {
    # Distinct also once "/" becomes "-" and braces go: that is the alarm's name (monitoring.tf).
    condition     = length(var.alarm_latency_routes) <= 20 && length(distinct([for r in var.alarm_latency_routes : trim(replace(replace(replace(r, "/", "-"), "{", ""), "}", ""), "-")])) == length(var.alarm_latency_routes) && alltrue([for r in var.alarm_latency_routes : can(regex("^/[A-Za-z0-9_/{}-]*$", r))])
    error_message = "alarm_latency_routes must list at most 20 route patterns, each starting with /, that stay distinct with / read as - (they name the alarms)."
  }
}

variable "alarm_latency_min_requests" {
  description = "Latency alarms: fewest requests to a route in a 5-minute period for its p99 to count; below that the p99 is the slowest of a handful (a cold connection), not a trend."
  type        = number
  default     = 50

  validation {
    condition     = var.alarm_latency_min_requests >= 1 && floor(var.alarm_latency_min_requests) == var.alarm_latency_min_requests
    error_message = "alarm_latency_min_requests must be a whole number of at least 1."
  }
}

variable "alarm_lambda_errors" {
  description = "Lambda errors alarms (one per function: API, migrate, push, forget_connections, the three WebSocket handlers, purge): function errors (Lambda Errors: crashes, timeouts, out of memory; the app's own 4xx/5xx answers are not errors) in a 5-minute period above which it alarms. Not for purge, which runs once an hour and alarms on any error."
  type        = number
  default     = 2

  validation {
    condition     = var.alarm_lambda_errors >= 0 && floor(var.alarm_lambda_errors) == var.alarm_lambda_errors
    error_message = "alarm_lambda_errors must be a whole number of at least 0."
  }
}

variable "alarm_api_throttles" {
  description = "API throttles alarm: invocations of the API Lambda refused in a 5-minute period (Lambda Throttles: all api_reserved_concurrency containers busy) above which it alarms."
  type        = number
  default     = 10

  validation {
    condition     = var.alarm_api_throttles >= 0 && floor(var.alarm_api_throttles) == var.alarm_api_throttles
    error_message = "alarm_api_throttles must be a whole number of at least 0."
  }
}

variable "alarm_aurora_acu_percent" {
  description = "Aurora capacity alarm (one per instance): ServerlessDatabaseCapacity as a percentage of aurora_max_acu above which it alarms, averaged over 5 minutes, 3 periods in a row."
  type        = number
  default     = 90

  validation {
    condition     = var.alarm_aurora_acu_percent >= 50 && var.alarm_aurora_acu_percent <= 100
    error_message = "alarm_aurora_acu_percent must be from 50 to 100."
  }
}

variable "alarm_db_connections" {
  description = "Aurora connections alarm (one per instance): DatabaseConnections (the 5-minute maximum, 2 of 3 periods) above which it alarms. The API opens at most api_reserved_concurrency connections, migrate one and the hourly purge one, so it must be above api_reserved_concurrency + 2; more means another client, a leak, or a raised concurrency."
  type        = number
  default     = 75

  validation {
    condition     = var.alarm_db_connections >= 2 && floor(var.alarm_db_connections) == var.alarm_db_connections
    error_message = "alarm_db_connections must be a whole number of at least 2."
  }
}

variable "alarm_redis_memory_percent" {
  description = "Redis memory alarm (one per node): DatabaseMemoryUsagePercentage (used memory of maxmemory) above which it alarms, averaged over 5 minutes, 3 periods in a row."
  type        = number
  default     = 80

  validation {
    condition     = var.alarm_redis_memory_percent >= 10 && var.alarm_redis_memory_percent <= 100
    error_message = "alarm_redis_memory_percent must be from 10 to 100."
  }
}
