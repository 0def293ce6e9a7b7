"""Microsoft's Graph SDK for Python (msgraph-sdk) against the fake Entra: every Graph call fctr's Entra adapter
makes, each a named check. Run by scripts/sdk-interop.sh, which starts the fake and passes:

  FAKE_ENTRA_BASE           base URL of the fake (http://127.0.0.1:PORT)
  FAKE_ENTRA_TOKEN_URL      the tenant's v2.0 token endpoint
  FAKE_ENTRA_CLIENT_ID      the fctr app's client id
  FAKE_ENTRA_CLIENT_SECRET  its secret (read from the fake's own output, never written in the repo)

Prints one line per check (PASS / FAIL / KNOWN-SDK-DEFECT) and exits 1 on any FAIL.
"""

import asyncio
import json
import os
import secrets
import string
import sys
import time
import urllib.parse
import urllib.request

from azure.core.credentials import AccessToken
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_authentication_azure.azure_identity_authentication_provider import (
    AzureIdentityAuthenticationProvider,
)
from msgraph import GraphRequestAdapter, GraphServiceClient
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.password_profile import PasswordProfile
from msgraph.generated.models.temporary_access_pass_authentication_method import (
    TemporaryAccessPassAuthenticationMethod,
)
from msgraph.generated.models.user import User
from msgraph.generated.users.item.member_of.member_of_request_builder import MemberOfRequestBuilder
from msgraph.generated.users.item.user_item_request_builder import UserItemRequestBuilder
from msgraph.generated.users.users_request_builder import UsersRequestBuilder

BASE = os.environ["FAKE_ENTRA_BASE"].rstrip("/")
TOKEN_URL = os.environ["FAKE_ENTRA_TOKEN_URL"]
CLIENT_ID = os.environ["FAKE_ENTRA_CLIENT_ID"]
CLIENT_SECRET = os.environ["FAKE_ENTRA_CLIENT_SECRET"]
GRAPH_SCOPE = "https://graph.microsoft.com/.default"

# The fixture tenant (testkit/FIXTURES-entra.md).
ALICE = "93e2e008-6093-4412-84d3-214f6379295a"
BOB = "6aa02773-eff6-4b5c-8d21-22df5f42cc39"
CAROL = "620a8efb-b065-43fb-97f8-7b54574b3d50"
GRACE = "f84ce73a-71dc-46fd-b140-d00a63b1d470"
IVAN = "b5a5ae21-bfbd-431c-994a-034073c6d1b9"
JUDY = "0d0e9547-dc36-4f3e-aa02-d9ba1dbd9fe8"
KIM_UPN = "kim_partner.example#EXT#@fctrfake.onmicrosoft.com"
KIM = "19ac0d05-bcae-4d0e-a730-85d62b3ef914"
ALICE_APP_METHOD = "baae86fe-86c4-4b34-8e0b-06c2f166beb1"
PASSWORD_METHOD = "28c10230-6103-485e-b985-444c60001490"
PROTECTED_GROUP = "fctr-protected"

RESULTS = []


class KnownDefect(Exception):
    """A bug in the SDK itself (not the fake), with its upstream reference."""

    def __init__(self, msg, url):
        super().__init__(f"{msg} ({url})")


class FakeTokenCredential:
    """A token credential for the fake's token endpoint (client credentials, client secret).

    azure-identity's own credentials insist on an https authority; the fake is plain http on loopback, so this
    asks the fake's v2.0 token endpoint directly and hands the token to the SDK as any credential would.
    """

    def __init__(self):
        self._token = None

    def get_token(self, *scopes, **_kwargs):
        if self._token is None or self._token.expires_on - 60 < time.time():
            form = urllib.parse.urlencode(
                {
                    "grant_type": "client_credentials",
                    "client_id": CLIENT_ID,
                    "client_secret": CLIENT_SECRET,
                    "scope": " ".join(scopes) or GRAPH_SCOPE,
                }
            ).encode()
            with urllib.request.urlopen(urllib.request.Request(TOKEN_URL, data=form), timeout=10) as r:
                body = json.load(r)
            self._token = AccessToken(body["access_token"], int(time.time()) + int(body["expires_in"]))
        return self._token


def control(method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(BASE + path, data=data, method=method)
    if data is not None:
        req.add_header("content-type", "application/json")
    with urllib.request.urlopen(req, timeout=10) as r:
        raw = r.read()
    return json.loads(raw) if raw else None


def record(name, status, detail=""):
    RESULTS.append((name, status))
    print(f"{status:<16} graph-python {name}{': ' + detail if detail else ''}", flush=True)


async def check(name, fn):
    try:
        detail = await fn()
        record(name, "PASS", detail or "")
    except KnownDefect as e:
        record(name, "KNOWN-SDK-DEFECT", str(e))
    except ODataError as e:
        err = e.error
        record(name, "FAIL", f"ODataError {e.response_status_code} {err.code if err else ''} {err.message if err else ''}")
    except Exception as e:  # noqa: BLE001 - every failure is reported as a FAIL line
        record(name, "FAIL", f"{type(e).__name__}: {e}")


def expect(cond, msg):
    if not cond:
        raise AssertionError(msg)


async def expect_odata_error(coro, status, code):
    try:
        await coro
    except ODataError as e:
        got = e.error.code if e.error else None
        expect(e.response_status_code == status, f"status {e.response_status_code}, want {status}")
        expect(got == code, f"code {got}, want {code}")
        return f"{status} {code}"
    raise AssertionError(f"no error, want {status} {code}")


def make_client():
    auth = AzureIdentityAuthenticationProvider(
        FakeTokenCredential(), scopes=[GRAPH_SCOPE], allowed_hosts=["127.0.0.1"]
    )
    adapter = GraphRequestAdapter(auth)
    adapter.base_url = BASE + "/v1.0"
    return GraphServiceClient(request_adapter=adapter)


async def main():
    client = make_client()
    users = client.users

    def select(*props):
        return RequestConfiguration(
            query_parameters=UserItemRequestBuilder.UserItemRequestBuilderGetQueryParameters(select=list(props))
        )

    async def get_user_by_id():
        u = await users.by_user_id(ALICE).get(
            request_configuration=select("id", "displayName", "userPrincipalName", "accountEnabled", "onPremisesSyncEnabled")
        )
        expect(u.id == ALICE, f"id {u.id}")
        expect(u.user_principal_name == "alice@example.com", f"upn {u.user_principal_name}")
        expect(u.account_enabled is True, f"accountEnabled {u.account_enabled}")

    async def get_user_by_upn():
        u = await users.by_user_id("alice@example.com").get()
        expect(u.id == ALICE, f"id {u.id}")

    async def get_guest_by_upn_with_hash():
        u = await users.by_user_id(KIM_UPN).get()
        expect(u.id == KIM, f"id {u.id}")

    async def get_user_unknown_404():
        return await expect_odata_error(users.by_user_id("nobody@example.com").get(), 404, "Request_ResourceNotFound")

    async def filter_users_by_upn():
        cfg = RequestConfiguration(
            query_parameters=UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(
                filter="userPrincipalName eq 'alice@example.com'", select=["id", "userPrincipalName"]
            )
        )
        page = await users.get(request_configuration=cfg)
        expect([u.id for u in page.value] == [ALICE], f"got {[u.id for u in page.value]}")

    async def search_users_eventual():
        cfg = RequestConfiguration(
            query_parameters=UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(
                search='"displayName:alice"', count=True, select=["id", "displayName"]
            )
        )
        cfg.headers.add("ConsistencyLevel", "eventual")
        page = await users.get(request_configuration=cfg)
        expect(ALICE in [u.id for u in page.value], f"got {[u.id for u in page.value]}")
        expect(page.odata_count is not None and page.odata_count >= 1, f"@odata.count {page.odata_count}")

    async def list_users_paged():
        cfg = RequestConfiguration(
            query_parameters=UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(top=5, select=["id"])
        )
        page = await users.get(request_configuration=cfg)
        seen = [u.id for u in page.value]
        pages = 1
        while page.odata_next_link:
            page = await users.with_url(page.odata_next_link).get()
            seen += [u.id for u in page.value]
            pages += 1
        fixtures = control("GET", "/_fake/fixtures")
        expect(len(seen) == len(set(seen)) == len(fixtures["users"]), f"{len(seen)} users over {pages} pages")
        return f"{len(seen)} users over {pages} pages"

    async def list_authentication_methods():
        page = await users.by_user_id(ALICE).authentication.methods.get()
        kinds = [m.odata_type for m in page.value]
        expect(
            kinds
            == [
                "#microsoft.graph.passwordAuthenticationMethod",
                "#microsoft.graph.microsoftAuthenticatorAuthenticationMethod",
                "#microsoft.graph.phoneAuthenticationMethod",
            ],
            f"types {kinds}",
        )
        expect(type(page.value[1]).__name__ == "MicrosoftAuthenticatorAuthenticationMethod", type(page.value[1]).__name__)
        expect(page.value[1].id == ALICE_APP_METHOD, f"id {page.value[1].id}")

    async def list_software_oath_methods():
        page = await users.by_user_id(BOB).authentication.software_oath_methods.get()
        expect(len(page.value) == 1, f"{len(page.value)} methods")

    async def list_member_of():
        cfg = RequestConfiguration(
            query_parameters=MemberOfRequestBuilder.MemberOfRequestBuilderGetQueryParameters(select=["id", "displayName"])
        )
        page = await users.by_user_id(CAROL).member_of.get(request_configuration=cfg)
        names = [getattr(o, "display_name", None) for o in page.value]
        expect(PROTECTED_GROUP in names, f"memberOf {names}")

    async def create_tap():
        tap = await users.by_user_id(IVAN).authentication.temporary_access_pass_methods.post(
            TemporaryAccessPassAuthenticationMethod(lifetime_in_minutes=60, is_usable_once=True)
        )
        expect(tap.temporary_access_pass, "no temporaryAccessPass")
        expect(tap.lifetime_in_minutes == 60, f"lifetime {tap.lifetime_in_minutes}")
        expect(tap.is_usable_once is True, f"isUsableOnce {tap.is_usable_once}")
        fx = control("GET", f"/_fake/users/{IVAN}/effects")
        expect(fx["tapsIssued"] == 1, f"effects {fx}")
        return None

    async def list_and_delete_tap():
        coll = users.by_user_id(IVAN).authentication.temporary_access_pass_methods
        page = await coll.get()
        expect(len(page.value) == 1, f"{len(page.value)} TAPs")
        expect(page.value[0].temporary_access_pass is None, "TAP readable after creation")
        await coll.by_temporary_access_pass_authentication_method_id(page.value[0].id).delete()
        page = await coll.get()
        expect(len(page.value) == 0, f"{len(page.value)} TAPs after delete")

    async def delete_authenticator_method():
        # As on Graph, the default method (Alice's Authenticator) cannot go while her phone remains: 400
        # badRequest. The phone goes first, then the Authenticator.
        auth = users.by_user_id(ALICE).authentication
        app = auth.microsoft_authenticator_methods.by_microsoft_authenticator_authentication_method_id(ALICE_APP_METHOD)
        refused = await expect_odata_error(app.delete(), 400, "badRequest")
        page = await auth.methods.get()
        phones = [m.id for m in page.value if m.odata_type == "#microsoft.graph.phoneAuthenticationMethod"]
        expect(len(phones) == 1, f"{len(phones)} phone methods")
        await auth.phone_methods.by_phone_authentication_method_id(phones[0]).delete()
        await app.delete()
        page = await auth.methods.get()
        left = [m.odata_type for m in page.value]
        expect(left == ["#microsoft.graph.passwordAuthenticationMethod"], f"left {left}")
        return f"default refused first ({refused}), then phone and Authenticator deleted"

    async def patch_account_enabled():
        await users.by_user_id(GRACE).patch(User(account_enabled=True))
        u = await users.by_user_id(GRACE).get(request_configuration=select("accountEnabled"))
        expect(u.account_enabled is True, f"accountEnabled {u.account_enabled}")
        await users.by_user_id(GRACE).patch(User(account_enabled=False))
        u = await users.by_user_id(GRACE).get(request_configuration=select("accountEnabled"))
        expect(u.account_enabled is False, f"accountEnabled {u.account_enabled}")

    async def patch_password_profile():
        # A throwaway password drawn at run time (never a literal): all four character classes.
        # No "b": the policy refuses a password that contains the UPN's local part ("bob").
        alphabet = (string.ascii_letters + string.digits).replace("b", "").replace("B", "")
        pw = "".join(secrets.choice(alphabet) for _ in range(16)) + "aA1-"
        await users.by_user_id(BOB).patch(
            User(password_profile=PasswordProfile(password=pw, force_change_password_next_sign_in=True))
        )
        fx = control("GET", f"/_fake/users/{BOB}/effects")
        expect(fx["passwordSets"] == 1 and fx["forceChangePasswordNextSignIn"] is True, f"effects {fx}")

    async def revoke_sign_in_sessions():
        r = await users.by_user_id(CAROL).revoke_sign_in_sessions.post()
        expect(r is not None and r.value is True, f"value {getattr(r, 'value', r)}")

    async def password_method_listed():
        page = await users.by_user_id(JUDY).authentication.methods.get()
        expect(page.value[0].id == PASSWORD_METHOD, f"first {page.value[0].id}")

    await check("get_user_by_id_select", get_user_by_id)
    await check("get_user_by_upn", get_user_by_upn)
    await check("get_guest_by_upn_with_hash", get_guest_by_upn_with_hash)
    await check("get_user_unknown_404", get_user_unknown_404)
    await check("filter_users_by_upn", filter_users_by_upn)
    await check("search_users_consistency_eventual", search_users_eventual)
    await check("list_users_paged_next_link", list_users_paged)
    await check("list_authentication_methods", list_authentication_methods)
    await check("list_software_oath_methods", list_software_oath_methods)
    await check("password_method_listed_first", password_method_listed)
    await check("list_member_of", list_member_of)
    await check("create_temporary_access_pass", create_tap)
    await check("list_and_delete_temporary_access_pass", list_and_delete_tap)
    await check("delete_authenticator_method", delete_authenticator_method)
    await check("patch_account_enabled", patch_account_enabled)
    await check("patch_password_profile", patch_password_profile)
    await check("revoke_sign_in_sessions", revoke_sign_in_sessions)

    count = lambda s: sum(1 for _, st in RESULTS if st == s)  # noqa: E731
    print(f"graph-python: {count('PASS')} PASS, {count('KNOWN-SDK-DEFECT')} KNOWN-SDK-DEFECT, {count('FAIL')} FAIL")
    return 1 if count("FAIL") else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
