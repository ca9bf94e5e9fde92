"""Handler modules shipped with the service. Users point ``WECOM_HANDLERS`` at their own."""
