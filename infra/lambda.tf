# The Lambdas themselves are deployed by Chalice; their log groups are created
# here so they get a retention and the CMK (Lambda would otherwise create them
# on first use, unencrypted and kept forever). Chalice names the functions
# "<app_name>-<stage>" (the API) and "<app_name>-<stage>-<name>" (each
# @app.lambda_function, and the WebSocket handlers as websocket_connect,
# websocket_message, websocket_disconnect: chalice/deploy/appgraph.py), hence
# name_prefix must equal app_name in .chalice/config.json. The names come
# from chalicelib/functions.json (local.functions); the rendered policies
# (scripts/deploy/render/) let each function write to exactly these groups.
resource "aws_cloudwatch_log_group" "lambda" {
  name              = "/aws/lambda/${local.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.this.arn
}

# migrate (@app.lambda_function in app.py). A stage deployed before this
# resource existed already has the group (made by Lambda): the deploy
# (scripts/deploy/terraform.py) imports it into the state before the apply.
resource "aws_cloudwatch_log_group" "migrate" {
  name              = "/aws/lambda/${local.name}-${local.functions.migrate}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.this.arn
}

# The other functions (local.extra_functions): push and forget_connections
# (@app.lambda_function in app.py), the three WebSocket handlers, and purge
# (@app.schedule: Chalice also makes its hourly EventBridge rule). A group
# Lambda made before this resource existed is imported by the deploy as for
# migrate.
resource "aws_cloudwatch_log_group" "function" {
  for_each = toset(local.extra_functions)

  name              = "/aws/lambda/${local.name}-${each.key}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.this.arn
}
