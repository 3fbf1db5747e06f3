#!/bin/sh
# The container's entrypoint: the first argument names the process, the rest are its arguments.
set -eu
what="${1:-help}"
[ "$#" -gt 0 ] && shift
case "$what" in
    node | router)
        exec python -m "$what" "$@"
        ;;
    feedring)
        exec feedring "$@"
        ;;
    help | --help | -h)
        cat <<'USAGE'
usage: feedring-entrypoint PROCESS [ARGS...]
  node     --config FILE --id ID      a storage node (python -m node --help)
  router   --config FILE --id N       a router (python -m router --help)
  feedring [ARGS...]                  the command line (feedring --help)
USAGE
        ;;
    *)
        echo "feedring-entrypoint: unknown process '$what' (node, router or feedring; 'help' for more)" >&2
        exit 2
        ;;
esac
