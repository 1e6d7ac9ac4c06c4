"""The metadata definitions catalogue (Glance's metadef tables): namespaces and their objects,
properties, tags and resource type associations."""
