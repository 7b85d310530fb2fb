# scripts/check-infra.sh scans infra/ a second time with these values, so that
# the resources behind enable_rds_proxy (count = 0 by default) are checked too.
enable_rds_proxy      = true
aurora_instance_count = 2
