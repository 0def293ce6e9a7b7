#!/usr/bin/env bash
# Fuzz the parsers: `bash scripts/fuzz.sh [seconds per target, default 60] [target...]`.
# Targets (fuzz/fuzz_targets/): policy_parse (policy file), portal_config (portal config file), api_bodies (API
# request bodies, ids, X-Forwarded-For), okta_json (Okta answers: users, factors, groups, push/poll/code results,
# token and error bodies, Link/rate-limit headers), entra_json (Graph answers: users, methods, memberOf pages,
# @odata.nextLink, TAP, token and error bodies, Retry-After), connector_xml (the Entra MFA connector's XML
# answers). The adapter targets call `fctr_okta::fuzzing` / `fctr_entra::fuzzing` (cargo feature `fuzzing`), which
# run the adapters' own decoders and conversions. Needs the nightly toolchain (installed
# here) and cargo-fuzz (installed below, debug build). Corpora live in fuzz/corpus/<target> (gitignored, kept
# between runs); a crash lands in fuzz/artifacts/<target>/ and this script exits non-zero. Turn every crash into
# a regression test under plain `cargo test` (in the tests of the crate that owns the parser).
set -euo pipefail
cd "$(dirname "$0")/.."
CARGO_FUZZ_VERSION=0.13.2
secs="${1:-60}"; shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(policy_parse portal_config api_bodies okta_json entra_json connector_xml)
if ! cargo fuzz --version 2>/dev/null | grep -q "$CARGO_FUZZ_VERSION"; then
  cargo install --locked --debug --quiet "cargo-fuzz@$CARGO_FUZZ_VERSION"
fi
toolchain=+nightly
if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  echo "no nightly toolchain: using RUSTC_BOOTSTRAP=1 on stable"
  toolchain=""; export RUSTC_BOOTSTRAP=1
fi
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-$PWD/fuzz/target}"
# Seed the corpora from the repository's own examples.
mkdir -p fuzz/corpus/policy_parse fuzz/corpus/portal_config fuzz/corpus/api_bodies
cp -n examples/*.toml docs/*.toml fuzz/corpus/policy_parse/ 2>/dev/null || true
find . -path ./target -prune -o -path ./fuzz -prune -o -name 'policy*.toml' -print 2>/dev/null |
  head -20 | while read -r f; do cp -n "$f" "fuzz/corpus/policy_parse/$(echo "$f" | tr / _)"; done
printf '[server]\nlisten = "0.0.0.0:8443"\nbehind_tls_proxy = true\n[network]\nallow = ["10.0.0.0/8", "2001:db8::/32"]\ntrusted_proxies = ["10.0.0.5"]\n[limits]\nsign_in_per_ip_per_minute = 30\n' \
  > fuzz/corpus/portal_config/seed.toml
printf '{"query":"alice@example.com"}' > fuzz/corpus/api_bodies/search.json
printf '{"code":"123456"}' > fuzz/corpus/api_bodies/code.json
printf '{"factor_id":"opfalice000000000000"}' > fuzz/corpus/api_bodies/factor.json
printf '198.51.100.1, 10.0.0.6, [2001:db8::1]:443' > fuzz/corpus/api_bodies/xff.txt
# Seeds for the adapter targets: bodies shaped like the real services' (reference/okta.md, entra.md) and the
# testkit fakes'. A seed is a body, or header lines `Name: value`.
seed() { mkdir -p "fuzz/corpus/$1"; printf '%s' "$3" > "fuzz/corpus/$1/$2"; }
O=https://acme.okta.com/api/v1/users/00u1abcd
seed okta_json user.json '{"id":"00u1abcd","status":"ACTIVE","created":"2024-01-02T03:04:05.000Z","activated":null,"statusChanged":"2024-02-01T00:00:00.000Z","lastLogin":"2026-11-01T09:00:00.000Z","passwordChanged":"2025-05-05T05:05:05.000Z","profile":{"firstName":"Jane","lastName":"Doe","login":"jane@example.com","email":"jane@example.com","mobilePhone":"+1 555 0100","primaryPhone":null,"displayName":null},"credentials":{"provider":{"type":"OKTA","name":"OKTA"}},"_links":{"self":{"href":"'"$O"'"}}}'
seed okta_json search.json '[{"id":"00u1abcd","status":"LOCKED_OUT","profile":{"login":"jane@example.com","email":"jane@example.com"},"credentials":{"provider":{"type":"ACTIVE_DIRECTORY"}}},{"id":"00u2","status":"SUSPENDED","profile":{"login":"j@x","firstName":"J","lastName":""}}]'
seed okta_json factors.json '[{"id":"opf1push","factorType":"push","provider":"OKTA","vendorName":"OKTA","status":"ACTIVE","profile":{"credentialId":"jane@example.com","deviceType":"SmartPhone_IPhone","name":"iPhone","platform":"IOS"}},{"id":"uft1totp","factorType":"token:software:totp","provider":"GOOGLE","status":"ACTIVE","profile":{"credentialId":"jane@example.com"}},{"id":"mbl1sms","factorType":"sms","provider":"OKTA","status":"PENDING_ACTIVATION","profile":{"phoneNumber":"+15550100"}},{"id":"fwf1","factorType":"webauthn","provider":"FIDO","status":"ACTIVE","profile":{"authenticatorName":"YubiKey"}},{"id":"x1","factorType":"signed_nonce","provider":"OKTA","status":"ACTIVE"}]'
seed okta_json groups.json '[{"id":"00g1","type":"OKTA_GROUP","profile":{"name":"Everyone","description":"All users"}},{"id":"00g2","type":"APP_GROUP","profile":{"name":"Domain Admins"}}]'
seed okta_json push_waiting.json '{"factorResult":"WAITING","expiresAt":"2026-11-29T07:05:00.000Z","profile":{"credentialId":"jane@example.com"},"_embedded":{"challenge":{"correctAnswer":42}},"_links":{"poll":{"href":"'"$O"'/factors/opf1push/transactions/v2mst.abc","hints":{"allow":["GET"]}},"cancel":{"href":"'"$O"'/factors/opf1push/transactions/v2mst.abc"}}}'
seed okta_json poll.json '{"factorResult":"REJECTED","profile":{"credentialId":"jane@example.com"},"_links":{"verify":{"href":"'"$O"'/factors/opf1push/verify"}}}'
seed okta_json code.json '{"factorResult":"PASSCODE_REPLAYED"}'
seed okta_json reset.json '{"resetPasswordUrl":"https://acme.okta.com/reset_password/XE6wE17zmphl3KqAPFxO"}'
seed okta_json temp.json '{"tempPassword":"HR076gb6"}'
seed okta_json token.json '{"token_type":"DPoP","expires_in":3600,"access_token":"eyJraWQiOiJ.eyJ2ZXIiOjEsImp0aS.sig","scope":"okta.users.read okta.users.manage"}'
seed okta_json token_error.json '{"error":"invalid_scope","error_description":"The following scopes are not allowed: okta.users.manage"}'
seed okta_json error.json '{"errorCode":"E0000006","errorSummary":"You do not have permission to perform the requested action","errorLink":"E0000006","errorId":"oaeXyz123","errorCauses":[]}'
seed okta_json headers.txt "$(printf 'Date: Sun, 29 Nov 2026 07:00:00 GMT\nX-Rate-Limit-Limit: 600\nX-Rate-Limit-Remaining: 3\nX-Rate-Limit-Reset: 1796022060\nRetry-After: 12\nLink: <%s/groups?limit=2>; rel="self", <%s/groups?after=00g2&limit=2>; rel="next"\nWWW-Authenticate: Bearer authorization_uri="x", realm="IdP", error="insufficient_scope", error_description="x"\n' "$O" "$O")"
G=https://graph.microsoft.com/v1.0
seed entra_json user.json '{"@odata.context":"'"$G"'/$metadata#users(id,userPrincipalName)/$entity","id":"5f3e1c2a-0000-4000-8000-000000000001","userPrincipalName":"jane@contoso.com","displayName":"Jane Doe","mail":"jane@contoso.com","mobilePhone":"+1 555 0100","accountEnabled":false,"onPremisesSyncEnabled":true,"lastPasswordChangeDateTime":"2025-05-05T05:05:05Z","createdDateTime":"2024-01-02T03:04:05Z"}'
seed entra_json users_page.json '{"@odata.context":"x","@odata.count":2,"value":[{"id":"5f3e1c2a-0000-4000-8000-000000000001","userPrincipalName":"jane@contoso.com","displayName":"Jane Doe","accountEnabled":true},{"id":"6","userPrincipalName":"j_ext#EXT#@contoso.onmicrosoft.com"}],"@odata.nextLink":"'"$G"'/users?$skiptoken=X%274453707%27"}'
seed entra_json methods.json '{"value":[{"@odata.type":"#microsoft.graph.microsoftAuthenticatorAuthenticationMethod","id":"6b6f6f6b-0000-4000-8000-000000000002","displayName":"iPhone 15","deviceTag":"SoftwareTokenActivated","phoneAppVersion":"6.2401.0119"},{"@odata.type":"#microsoft.graph.phoneAuthenticationMethod","id":"3179e48a-750b-4051-897c-87b9720928f7","phoneNumber":"+1 5550100","phoneType":"mobile","smsSignInState":"notEnabled"},{"@odata.type":"#microsoft.graph.temporaryAccessPassAuthenticationMethod","id":"t1","isUsable":false,"lifetimeInMinutes":60},{"@odata.type":"#microsoft.graph.emailAuthenticationMethod","id":"e1","emailAddress":"jane@home.example"},{"@odata.type":"#microsoft.graph.passwordAuthenticationMethod","id":"28c10230-6103-485e-b985-444c60001490"}]}'
seed entra_json memberof.json '{"value":[{"@odata.type":"#microsoft.graph.group","id":"g1","displayName":"Helpdesk"},{"@odata.type":"#microsoft.graph.directoryRole","id":"r1","displayName":"Global Administrator"},{"@odata.type":"#microsoft.graph.administrativeUnit","id":"a1"}],"@odata.nextLink":"'"$G"'/users/x/memberOf?$skiptoken=abc"}'
seed entra_json tap.json '{"id":"t2","isUsable":true,"methodUsabilityReason":"EnabledByPolicy","temporaryAccessPass":"TAPRq#xy","createdDateTime":"2026-11-29T07:00:00Z","startDateTime":"2026-11-29T07:00:00Z","lifetimeInMinutes":60,"isUsableOnce":true}'
seed entra_json token.json '{"token_type":"Bearer","expires_in":"3599","ext_expires_in":3599,"access_token":"eyJ0eXAiOiJKV1Qi.eyJhdWQiOi.sig"}'
seed entra_json token_error.json '{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided.","error_codes":[7000215],"timestamp":"2026-11-29 07:00:00Z","trace_id":"t","correlation_id":"c"}'
seed entra_json error.json '{"error":{"code":"Authorization_RequestDenied","message":"Insufficient privileges to complete the operation.","innerError":{"date":"2026-11-29T07:00:00","request-id":"r","client-request-id":"c"}}}'
seed entra_json headers.txt "$(printf 'Retry-After: 7\nrequest-id: 9f0a1b2c-0000-4000-8000-000000000003\nRetry-After: Sun, 29 Nov 2026 07:00:30 GMT\n')"
NS='xmlns="http://schemas.datacontract.org/2004/07/Microsoft.StrongAuthentication.Connector" xmlns:i="http://www.w3.org/2001/XMLSchema-instance"'
seed connector_xml begin_push.xml '<BeginTwoWayAuthenticationResponse '"$NS"'><AffinityUrl i:nil="true"/><AuthenticationResult>true</AuthenticationResult><Result><Error i:nil="true"/><Exception i:nil="true"/><Message i:nil="true"/><RenewCert>false</RenewCert><Retry>false</Retry><Value>Success</Value></Result><SessionId i:nil="true"/><UserPrincipalName>jane@contoso.com</UserPrincipalName><ValidEntropyNumber i:nil="true"/><Version>1.0</Version></BeginTwoWayAuthenticationResponse>'
seed connector_xml begin_otp.xml '<?xml version="1.0" encoding="utf-8"?><BeginTwoWayAuthenticationResponse '"$NS"'><AffinityUrl>https://strongauthenticationservice.auth.microsoft.com/StrongAuthenticationService.svc/Connector/EndTwoWayAuthentication?dc=KRS&amp;x=1</AffinityUrl><AuthenticationResult>challenge</AuthenticationResult><Result><Message i:nil="true"/><Retry>false</Retry><Value>Success</Value></Result><SessionId>270867b8-6bac-4cb5-8a1c-2c3e4f5a6b7c</SessionId><UserPrincipalName>j&amp;x@contoso.com</UserPrincipalName><Version>1.0</Version></BeginTwoWayAuthenticationResponse>'
seed connector_xml end.xml '<EndTwoWayAuthenticationResponse '"$NS"'><AuthenticationResult>false</AuthenticationResult><Result><Message><![CDATA[The code was <wrong>]]></Message><Retry>true</Retry><Value>OathCodeIncorrect</Value></Result><SessionId>270867b8</SessionId><UserPrincipalName>jane@contoso.com</UserPrincipalName><Version>1.0</Version></EndTwoWayAuthenticationResponse>'
seed connector_xml denied.xml '<a:BeginTwoWayAuthenticationResponse xmlns:a="urn:x"><!-- c --><?pi x?><a:Result><a:Value>PhoneAppDenied</a:Value></a:Result><a:AuthenticationResult>false</a:AuthenticationResult><a:SessionId>&#x41;&#66;</a:SessionId></a:BeginTwoWayAuthenticationResponse>'
status=0
for t in "${targets[@]}"; do
  echo "== fuzz $t for ${secs}s"
  (cd fuzz && cargo $toolchain fuzz run -O "$t" "corpus/$t" -- -max_total_time="$secs" -max_len=8192 \
      -print_final_stats=1 2>&1 | grep -E "^(#[0-9]+\s+DONE|Done|stat::number_of_executed_units|stat::peak_rss_mb|==[0-9]+==|SUMMARY|thread .* panicked|Test unit written)" ) || status=1
  if ls "fuzz/artifacts/$t"/crash-* >/dev/null 2>&1; then
    echo "CRASH in $t: $(ls fuzz/artifacts/$t/crash-*)"; status=1
  fi
done
exit $status
