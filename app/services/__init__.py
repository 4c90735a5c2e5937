"""Services: logic that spans engines or requests but is neither HTTP nor docker-py."""
