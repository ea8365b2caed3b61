"""Optional extras that need packages fannode does not install itself."""
