# The Lambda itself is deployed by Chalice; its log group is created here so it
# gets a retention and the CMK. Chalice names the function "<app_name>-<stage>",
# hence name_prefix must equal app_name in .chalice/config.json.
resource "aws_cloudwatch_log_group" "lambda" {
  name              = "/aws/lambda/${local.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.this.arn
}
