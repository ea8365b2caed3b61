# Sourced by every pane of the workshop's tmuxinator sessions (run from the repository).
# The venv's fannode, the workshop services importable, and the box's ZooKeeper/RabbitMQ
# when FANNODE_REGISTRY / FANNODE_EVENTS say so (else the hub in the hub pane).
export PATH="$PWD/.venv/bin:$PATH"
export PYTHONPATH=services
hub_pane() {
  if [ -n "$FANNODE_REGISTRY" ] && [ "${FANNODE_REGISTRY#hub}" = "$FANNODE_REGISTRY" ]; then
    echo "discovery: $FANNODE_REGISTRY, events: ${FANNODE_EVENTS:-?} (no hub needed)"
  else
    fannode hub
  fi
}
