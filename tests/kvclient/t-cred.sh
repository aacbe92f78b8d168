#!/bin/bash
# t-cred.sh: kv-client's credentials against oauthserver.py (a loopback
# Entra ID token endpoint over HTTPS with a test CA made here, and the
# IMDS and App Service endpoints over plain http).  Runs test_cred (TAP).
set -u
: "${KVC_TEST_CRED:?}"
. "$(dirname "$0")/oauth-setup.sh"
W=$(mktemp -d /tmp/kvc-cred.XXXXXX)
cleanup() { oauth_stop; rm -rf "$W"; }
trap cleanup EXIT
oauth_setup "$W" || { echo "1..0 # SKIP $OAUTH_WHY"; exit 0; }
env -u AZURE_TENANT_ID -u AZURE_CLIENT_ID -u AZURE_CLIENT_SECRET \
    -u AZURE_CLIENT_CERTIFICATE_PATH -u AZURE_CLIENT_CERTIFICATE_PASSWORD \
    -u AZURE_FEDERATED_TOKEN_FILE -u AZURE_AUTHORITY_HOST -u IDENTITY_ENDPOINT \
    -u IDENTITY_HEADER -u AZURE_POD_IDENTITY_AUTHORITY_HOST \
    OAS_DIR="$W" OAS_PORT=$OAUTH_PORT OAS_HTTP_PORT=$OAUTH_HTTP_PORT \
    NO_PROXY='*' no_proxy='*' "$KVC_TEST_CRED"
rc=$?
[ $rc -ne 0 ] && sed 's/^/# server: /' "$W/server.log" | tail -30
exit $rc
