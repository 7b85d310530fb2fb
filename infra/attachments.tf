# Message attachments: a private bucket that browsers upload to and download
# from directly, with presigned POSTs and GETs the API Lambda signs (its role
# is the signer: the renderer, scripts/deploy/render/policies.py, lets it
# put, get and delete attachments/* and use the key through S3, nothing
# else). Keys are attachments/uploads/ and attachments/files/<uploader_id>/<attachment_id>; the app reads
# the bucket's name from ATTACHMENTS_BUCKET (API and purge only). The
# in-VPC Lambdas reach it through the S3 gateway endpoint (network.tf).
# docs/deploy.md, "Attachments", says what it costs and why each setting.

# Bucket names are global: a random suffix instead of the account id, which
# would otherwise show in every presigned URL. The name fits S3's 63
# characters: local.name is at most 24 + 1 + 10, "-attachments-" 13, 8 hex.
resource "random_id" "attachments" {
  byte_length = 4
}

resource "aws_s3_bucket" "attachments" {
  #checkov:skip=CKV_AWS_18:No access log bucket in this stack (none exists to write to, and one per stage would need its own logging); every request is signed by the API role, and the app logs who was given which presigned URL. Add S3 server access logging or CloudTrail data events for the prefix if an audit of downloads is required.
  #checkov:skip=CKV_AWS_21:Versioning stays off on purpose: a deleted message (or one past retention) must take its attachment with it, and a versioned bucket would keep the old object as a noncurrent version.
  #checkov:skip=CKV_AWS_144:No cross-region replication: attachments live exactly as long as their message, and a replica would outlive the deletion; Aurora's backups are the stack's recovery, not a second copy of user files.
  #checkov:skip=CKV2_AWS_62:No event notifications: nothing reacts to uploads; the app checks each object with HeadObject when the message referencing it is sent.
  bucket = "${local.name}-attachments-${random_id.attachments.hex}"

  # A destroy refuses a bucket that still holds objects: empty it on purpose
  # first (docs/deploy.md, "Teardown").
  force_destroy = false

  tags = { Name = "${local.name}-attachments" }
}

resource "aws_s3_bucket_public_access_block" "attachments" {
  bucket = aws_s3_bucket.attachments.id

  block_public_acls       = true
  ignore_public_acls      = true
  block_public_policy     = true
  restrict_public_buckets = true
}

# ACLs off: the bucket owner owns every object, whoever uploaded it.
resource "aws_s3_bucket_ownership_controls" "attachments" {
  bucket = aws_s3_bucket.attachments.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

# The stack's customer managed key (secrets.tf: the one key for everything at
# rest here). A bucket key: S3 asks KMS for a data key per bucket and period
# rather than per object, so uploads and downloads cost few KMS requests.
resource "aws_s3_bucket_server_side_encryption_configuration" "attachments" {
  bucket = aws_s3_bucket.attachments.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.this.arn
    }
    bucket_key_enabled = true
  }
}

# Off, and said so: deleting an object must delete it. With versioning on, a
# DeleteObject only adds a delete marker and the attachment of a deleted
# message would stay readable as a noncurrent version (hence also no
# noncurrent-version rule below).
resource "aws_s3_bucket_versioning" "attachments" {
  bucket = aws_s3_bucket.attachments.id

  versioning_configuration {
    status = "Disabled"
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "attachments" {
  bucket = aws_s3_bucket.attachments.id

  # Uploads are copied under attachments/files/ when a message carries them
  # (the app deletes the upload then): what is left under uploads/ after a
  # day was never attached, or its deletion failed.
  rule {
    id     = "expire-uploads-after-a-day"
    status = "Enabled"

    filter {
      prefix = "${local.attachments_prefix}uploads/"
    }

    expiration {
      days = 1
    }
  }

  # Parts of an upload never completed are billed as storage until aborted.
  rule {
    id     = "abort-incomplete-multipart-uploads"
    status = "Enabled"

    filter {}

    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }

  # A backstop only: the app deletes a message's objects itself (with the
  # message, and the hourly purge with the messages past retention_days).
  # One day later than the purge, so that it never takes the object of a
  # message that is still kept (S3 counts from the upload, which comes just
  # before the send, and rounds to the next midnight UTC). None when
  # retention_days is 0: every message, and its attachments, is kept.
  dynamic "rule" {
    for_each = var.retention_days > 0 ? [var.retention_days + 1] : []

    content {
      id     = "expire-attachments-after-retention"
      status = "Enabled"

      filter {
        prefix = local.attachments_prefix
      }

      expiration {
        days = rule.value
      }
    }
  }

  # S3 rejects a lifecycle rule on a bucket whose versioning is changing.
  depends_on = [aws_s3_bucket_versioning.attachments]
}

# TLS only, for everyone, the API role included.
resource "aws_s3_bucket_policy" "attachments" {
  bucket = aws_s3_bucket.attachments.id

  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "DenyInsecureTransport"
      Effect    = "Deny"
      Principal = "*"
      Action    = "s3:*"
      Resource  = [aws_s3_bucket.attachments.arn, "${aws_s3_bucket.attachments.arn}/*"]
      Condition = { Bool = { "aws:SecureTransport" = "false" } }
    }]
  })

  # The public access block first: it is what keeps any later policy private.
  depends_on = [aws_s3_bucket_public_access_block.attachments]
}

# The browser POSTs the upload form to the bucket and GETs the file from it,
# from the web client's origin: the API's own (the page is served by the API)
# and any in var.attachments_cors_origins. The REST API is Chalice's, made
# after this apply on a first deploy, so Terraform cannot know its id: the
# deploy passes it as var.rest_api_id from .chalice/deployed/<stage>.json
# and, on a first deploy, applies once more after chalice deploy recorded it
# (scripts/deploy/cors.py). Not a wildcard such as
# https://*.execute-api.<region>.amazonaws.com, which would be every API
# Gateway API of every account in the region. No origin known: no CORS
# configuration at all (browsers then cannot upload; the API works).
resource "aws_s3_bucket_cors_configuration" "attachments" {
  count = length(local.attachments_cors_origins) > 0 ? 1 : 0

  bucket = aws_s3_bucket.attachments.id

  cors_rule {
    id              = "web-client"
    allowed_methods = ["POST", "GET"]
    allowed_origins = local.attachments_cors_origins
    # Any request header: the presigned signature, not CORS, is what grants
    # access (a page of another origin holding a URL could use it anyway).
    allowed_headers = ["*"]
    expose_headers  = ["ETag"]
    max_age_seconds = 3600
  }
}

locals {
  # The app's key layout: attachments/uploads/ and attachments/files/<uploader_id>/<attachment_id>.
  attachments_prefix = "attachments/"

  # What the roles, the endpoint and the key may touch: objects under the prefix only.
  attachments_objects_arn = "${aws_s3_bucket.attachments.arn}/${local.attachments_prefix}*"

  # The REST API's origin (scheme and host, no stage path), once its id is known.
  api_origin               = var.rest_api_id == "" ? [] : ["https://${var.rest_api_id}.execute-api.${var.region}.${local.dns_suffix}"]
  attachments_cors_origins = distinct(concat(local.api_origin, var.attachments_cors_origins))
}
