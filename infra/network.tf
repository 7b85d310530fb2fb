# A VPC with two private subnets and nothing that reaches the internet: no
# internet gateway, no NAT gateway, no route but the implicit local one and
# the S3 gateway endpoint's (to this region's S3 only). The in-VPC Lambdas
# reach Aurora, ElastiCache, through interface endpoints Secrets Manager and
# (to invoke the push function only) Lambda, and through the gateway
# endpoint the attachments bucket (attachments.tf); CloudWatch
# Logs delivery does not go through the VPC. The push function itself runs
# outside the VPC: it posts to API Gateway's public @connections endpoint
# (docs/deploy.md, "How a push reaches API Gateway").

resource "aws_vpc" "this" {
  cidr_block           = var.vpc_cidr
  enable_dns_support   = true
  enable_dns_hostnames = true # required for the endpoint's private DNS name

  tags = { Name = local.name }
}

# Take over the VPC's default security group and leave it without rules, so
# anything launched without an explicit group can talk to nothing.
resource "aws_default_security_group" "this" {
  vpc_id = aws_vpc.this.id

  tags = { Name = "${local.name}-default-deny" }
}

resource "aws_subnet" "private" {
  count = var.az_count

  vpc_id                  = aws_vpc.this.id
  availability_zone       = local.azs[count.index]
  cidr_block              = cidrsubnet(var.vpc_cidr, 4, count.index)
  map_public_ip_on_launch = false

  tags = { Name = "${local.name}-private-${local.azs[count.index]}", Tier = "private" }
}

# One route table per subnet with only the implicit local route and the S3
# gateway endpoint's route (below), which the endpoint adds itself.
resource "aws_route_table" "private" {
  count = var.az_count

  vpc_id = aws_vpc.this.id

  tags = { Name = "${local.name}-private-${local.azs[count.index]}" }
}

resource "aws_route_table_association" "private" {
  count = var.az_count

  subnet_id      = aws_subnet.private[count.index].id
  route_table_id = aws_route_table.private[count.index].id
}

# ---------------------------------------------------------------- Secrets Manager endpoint

resource "aws_vpc_endpoint" "secretsmanager" {
  vpc_id              = aws_vpc.this.id
  service_name        = "com.amazonaws.${var.region}.secretsmanager"
  vpc_endpoint_type   = "Interface"
  private_dns_enabled = true # boto3's default regional endpoint resolves to it
  subnet_ids          = aws_subnet.private[*].id
  security_group_ids  = [aws_security_group.endpoints.id]

  # Only this account's principals, and only the application's secrets.
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "AppSecretsOnly"
      Effect    = "Allow"
      Principal = { AWS = "*" }
      Action    = ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"]
      Resource  = local.app_secret_arns
      Condition = { StringEquals = { "aws:PrincipalAccount" = local.account_id } }
    }]
  })

  tags = { Name = "${local.name}-secretsmanager" }
}

# ---------------------------------------------------------------- Lambda endpoint

# The API and the WebSocket handlers hand each push to the push function
# (outside the VPC) with an asynchronous Invoke; this endpoint is their only
# way to the Lambda API. A NAT gateway would cost more and open the VPC to the
# internet; docs/deploy.md weighs the alternatives.
resource "aws_vpc_endpoint" "lambda" {
  vpc_id              = aws_vpc.this.id
  service_name        = "com.amazonaws.${var.region}.lambda"
  vpc_endpoint_type   = "Interface"
  private_dns_enabled = true # boto3's default lambda.<region> endpoint resolves to it
  subnet_ids          = aws_subnet.private[*].id
  security_group_ids  = [aws_security_group.lambda_endpoint.id]

  # Only this account's principals, only Invoke, only the push function: the
  # endpoint cannot be used to reach any other function or Lambda action.
  # Both ARNs, as the Lambda guide's endpoint policy example requires.
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "InvokePushOnly"
      Effect    = "Allow"
      Principal = { AWS = "*" }
      Action    = "lambda:InvokeFunction"
      Resource  = [local.push_function_arn, "${local.push_function_arn}:*"]
      Condition = { StringEquals = { "aws:PrincipalAccount" = local.account_id } }
    }]
  })

  tags = { Name = "${local.name}-lambda" }
}

# ---------------------------------------------------------------- S3 gateway endpoint

# The API and purge check (HeadObject) and delete attachments from the VPC.
# A gateway endpoint costs nothing (no hourly or per-GB charge, unlike the
# interface endpoints above) and adds to each private route table a route to
# S3's prefix list of this region only: still nothing reaches the internet.
# Browsers upload and download over the internet with presigned URLs; that
# traffic never enters the VPC.
resource "aws_vpc_endpoint" "s3" {
  vpc_id            = aws_vpc.this.id
  service_name      = "com.amazonaws.${var.region}.s3"
  vpc_endpoint_type = "Gateway"
  route_table_ids   = aws_route_table.private[*].id

  # Only this account's principals, only the attachments: the VPC cannot be
  # used to read or write any other bucket (no exfiltration to a bucket of
  # another account), nor list or configure this one. GetObject is what
  # HeadObject needs; PutObject is the app's CopyObject of an upload to where
  # no upload form writes (browsers upload directly, not through the VPC).
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "AttachmentsOnly"
      Effect    = "Allow"
      Principal = { AWS = "*" }
      Action    = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
      Resource  = local.attachments_objects_arn
      Condition = { StringEquals = { "aws:PrincipalAccount" = local.account_id } }
    }]
  })

  tags = { Name = "${local.name}-s3" }
}

# ---------------------------------------------------------------- flow logs

resource "aws_flow_log" "this" {
  vpc_id                   = aws_vpc.this.id
  traffic_type             = "ALL"
  log_destination_type     = "cloud-watch-logs"
  log_destination          = aws_cloudwatch_log_group.flow_logs.arn
  iam_role_arn             = aws_iam_role.flow_logs.arn
  max_aggregation_interval = 600

  tags = { Name = "${local.name}-flow-logs" }
}

resource "aws_cloudwatch_log_group" "flow_logs" {
  name              = "/aws/vpc/flow-logs/${local.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.this.arn
}

resource "aws_iam_role" "flow_logs" {
  name = "${local.name}-vpc-flow-logs"

  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "vpc-flow-logs.amazonaws.com" }
      Action    = "sts:AssumeRole"
      Condition = {
        StringEquals = { "aws:SourceAccount" = local.account_id }
        ArnLike      = { "aws:SourceArn" = "arn:${local.partition}:ec2:${var.region}:${local.account_id}:vpc-flow-log/*" }
      }
    }]
  })
}

resource "aws_iam_role_policy" "flow_logs" {
  name = "write-flow-logs"
  role = aws_iam_role.flow_logs.id

  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect = "Allow"
      Action = [
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "logs:DescribeLogGroups",
        "logs:DescribeLogStreams",
      ]
      Resource = [
        aws_cloudwatch_log_group.flow_logs.arn,
        "${aws_cloudwatch_log_group.flow_logs.arn}:*",
      ]
    }]
  })
}
