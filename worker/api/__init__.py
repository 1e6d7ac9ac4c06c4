"""``imgworker api``: OpenStack Glance's Image API v2, in front of the workers."""
