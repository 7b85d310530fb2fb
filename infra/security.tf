# Security groups. Every rule names its peer: a group, or for S3 the gateway
# endpoint's prefix list; there is no CIDR rule at
# all, so nothing is reachable from 0.0.0.0/0 and the in-VPC Lambdas can reach
# only MySQL, Redis, the Secrets Manager endpoint, the Lambda endpoint and,
# by the S3 gateway endpoint's prefix list, S3 (the attachments bucket). The
# push function runs outside the VPC and has no security group.

resource "aws_security_group" "lambda" {
  #checkov:skip=CKV2_AWS_5:Attached outside Terraform: Chalice puts it in the Lambda's VpcConfig from the lambda_security_group_id output (scripts/deploy/render/).
  name_prefix = "${local.name}-lambda-"
  description = "Messaging Lambda: egress only to MySQL, Redis and the Secrets Manager and Lambda endpoints"
  vpc_id      = aws_vpc.this.id

  tags = { Name = "${local.name}-lambda" }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_security_group" "db" {
  name_prefix = "${local.name}-db-"
  description = "Aurora MySQL: 3306 from the Lambda (and the RDS Proxy when enabled)"
  vpc_id      = aws_vpc.this.id

  tags = { Name = "${local.name}-db" }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_security_group" "redis" {
  name_prefix = "${local.name}-redis-"
  description = "ElastiCache: 6379 from the Lambda only"
  vpc_id      = aws_vpc.this.id

  tags = { Name = "${local.name}-redis" }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_security_group" "endpoints" {
  name_prefix = "${local.name}-vpc-endpoints-"
  description = "Secrets Manager interface endpoint: 443 from the Lambda (and the RDS Proxy when enabled)"
  vpc_id      = aws_vpc.this.id

  tags = { Name = "${local.name}-vpc-endpoints" }

  lifecycle {
    create_before_destroy = true
  }
}

# Its own group, not "endpoints": the RDS Proxy may reach Secrets Manager,
# but has no business with the Lambda API.
resource "aws_security_group" "lambda_endpoint" {
  name_prefix = "${local.name}-lambda-endpoint-"
  description = "Lambda interface endpoint: 443 from the Lambda only"
  vpc_id      = aws_vpc.this.id

  tags = { Name = "${local.name}-lambda-endpoint" }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_security_group" "proxy" {
  #checkov:skip=CKV2_AWS_5:Attached to aws_db_proxy.this (vpc_security_group_ids), a resource type the check does not know.
  count = var.enable_rds_proxy ? 1 : 0

  name_prefix = "${local.name}-rds-proxy-"
  description = "RDS Proxy: 3306 from the Lambda, 3306 to Aurora, 443 to the Secrets Manager endpoint"
  vpc_id      = aws_vpc.this.id

  tags = { Name = "${local.name}-rds-proxy" }

  lifecycle {
    create_before_destroy = true
  }
}

# ---------------------------------------------------------------- Lambda egress

resource "aws_vpc_security_group_egress_rule" "lambda_to_db" {
  security_group_id            = aws_security_group.lambda.id
  description                  = "MySQL to the Aurora cluster"
  ip_protocol                  = "tcp"
  from_port                    = local.db_port
  to_port                      = local.db_port
  referenced_security_group_id = aws_security_group.db.id
}

resource "aws_vpc_security_group_egress_rule" "lambda_to_proxy" {
  count = var.enable_rds_proxy ? 1 : 0

  security_group_id            = aws_security_group.lambda.id
  description                  = "MySQL to the RDS Proxy"
  ip_protocol                  = "tcp"
  from_port                    = local.db_port
  to_port                      = local.db_port
  referenced_security_group_id = aws_security_group.proxy[0].id
}

resource "aws_vpc_security_group_egress_rule" "lambda_to_redis" {
  security_group_id            = aws_security_group.lambda.id
  description                  = "Redis (TLS) to the ElastiCache replication group"
  ip_protocol                  = "tcp"
  from_port                    = local.redis_port
  to_port                      = local.redis_port
  referenced_security_group_id = aws_security_group.redis.id
}

resource "aws_vpc_security_group_egress_rule" "lambda_to_endpoints" {
  security_group_id            = aws_security_group.lambda.id
  description                  = "HTTPS to the Secrets Manager interface endpoint"
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
  referenced_security_group_id = aws_security_group.endpoints.id
}

resource "aws_vpc_security_group_egress_rule" "lambda_to_lambda_endpoint" {
  security_group_id            = aws_security_group.lambda.id
  description                  = "HTTPS to the Lambda interface endpoint (invoking the push function)"
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
  referenced_security_group_id = aws_security_group.lambda_endpoint.id
}

# Not a CIDR: the S3 gateway endpoint's prefix list (network.tf), that is
# S3 in this region, where the endpoint policy allows the attachments only.
resource "aws_vpc_security_group_egress_rule" "lambda_to_s3" {
  security_group_id = aws_security_group.lambda.id
  description       = "HTTPS to S3 through the gateway endpoint (the attachments bucket)"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  prefix_list_id    = aws_vpc_endpoint.s3.prefix_list_id
}

# ---------------------------------------------------------------- database ingress

resource "aws_vpc_security_group_ingress_rule" "db_from_lambda" {
  security_group_id            = aws_security_group.db.id
  description                  = "MySQL from the Lambda"
  ip_protocol                  = "tcp"
  from_port                    = local.db_port
  to_port                      = local.db_port
  referenced_security_group_id = aws_security_group.lambda.id
}

resource "aws_vpc_security_group_ingress_rule" "db_from_proxy" {
  count = var.enable_rds_proxy ? 1 : 0

  security_group_id            = aws_security_group.db.id
  description                  = "MySQL from the RDS Proxy"
  ip_protocol                  = "tcp"
  from_port                    = local.db_port
  to_port                      = local.db_port
  referenced_security_group_id = aws_security_group.proxy[0].id
}

# ---------------------------------------------------------------- Redis ingress

resource "aws_vpc_security_group_ingress_rule" "redis_from_lambda" {
  security_group_id            = aws_security_group.redis.id
  description                  = "Redis (TLS) from the Lambda"
  ip_protocol                  = "tcp"
  from_port                    = local.redis_port
  to_port                      = local.redis_port
  referenced_security_group_id = aws_security_group.lambda.id
}

# ---------------------------------------------------------------- endpoint ingress

resource "aws_vpc_security_group_ingress_rule" "endpoints_from_lambda" {
  security_group_id            = aws_security_group.endpoints.id
  description                  = "HTTPS from the Lambda"
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
  referenced_security_group_id = aws_security_group.lambda.id
}

resource "aws_vpc_security_group_ingress_rule" "endpoints_from_proxy" {
  count = var.enable_rds_proxy ? 1 : 0

  security_group_id            = aws_security_group.endpoints.id
  description                  = "HTTPS from the RDS Proxy (reads the master secret)"
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
  referenced_security_group_id = aws_security_group.proxy[0].id
}

resource "aws_vpc_security_group_ingress_rule" "lambda_endpoint_from_lambda" {
  security_group_id            = aws_security_group.lambda_endpoint.id
  description                  = "HTTPS from the Lambda"
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
  referenced_security_group_id = aws_security_group.lambda.id
}

# ---------------------------------------------------------------- proxy

resource "aws_vpc_security_group_ingress_rule" "proxy_from_lambda" {
  count = var.enable_rds_proxy ? 1 : 0

  security_group_id            = aws_security_group.proxy[0].id
  description                  = "MySQL from the Lambda"
  ip_protocol                  = "tcp"
  from_port                    = local.db_port
  to_port                      = local.db_port
  referenced_security_group_id = aws_security_group.lambda.id
}

resource "aws_vpc_security_group_egress_rule" "proxy_to_db" {
  count = var.enable_rds_proxy ? 1 : 0

  security_group_id            = aws_security_group.proxy[0].id
  description                  = "MySQL to the Aurora cluster"
  ip_protocol                  = "tcp"
  from_port                    = local.db_port
  to_port                      = local.db_port
  referenced_security_group_id = aws_security_group.db.id
}

resource "aws_vpc_security_group_egress_rule" "proxy_to_endpoints" {
  count = var.enable_rds_proxy ? 1 : 0

  security_group_id            = aws_security_group.proxy[0].id
  description                  = "HTTPS to the Secrets Manager interface endpoint"
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
  referenced_security_group_id = aws_security_group.endpoints.id
}
