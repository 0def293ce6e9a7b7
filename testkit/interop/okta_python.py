"""Okta's Python management SDK (PyPI `okta`) against the fake Okta: every call fctr's Okta adapter makes, each a
named check. Run by scripts/sdk-interop.sh, which starts the fake and passes:

  FAKE_OKTA_BASE       base URL of the fake (http://127.0.0.1:PORT)
  FAKE_OKTA_TOKEN      the fake's SSWS token (read from the fake's own output, never written in the repo)
  FAKE_OKTA_CLIENT_ID, FAKE_OKTA_KEY_ID, FAKE_OKTA_KEY_PEM   the service app (private_key_jwt) and its key file

Prints one line per check (PASS / FAIL / KNOWN-SDK-DEFECT) and exits 1 on any FAIL.
"""

import asyncio
import json
import os
import sys
import urllib.request

from okta.client import Client as OktaClient
from okta.models.user_factor_verify_request import UserFactorVerifyRequest

BASE = os.environ["FAKE_OKTA_BASE"].rstrip("/")
TOKEN = os.environ["FAKE_OKTA_TOKEN"]

# The fixture org (testkit/FIXTURES.md).
ALICE = "00ualice000000000000"
ALICE_PUSH = "opfalice000000000000"
ALICE_TOTP = "ostalice000000000000"
BOB = "00ubob00000000000000"
BOB_TOTP = "uftbob00000000000000"
CAROL = "00ucarol000000000000"
DAVE = "00udave0000000000000"
ERIN = "00uerin0000000000000"
FRANK = "00ufrank000000000000"
IVAN = "00uivan0000000000000"

PY_SSWS_DEFECT = (
    "in SSWS mode the SDK sends 'Authorization: SSWS<token>' with no space (Configuration.auth_settings joins "
    "authorizationMode and the token); Okta documents 'SSWS <token>'",
    "https://github.com/okta/okta-sdk-python/blob/master/okta/configuration.py",
)
PY_EC_KEY_DEFECT = (
    "PrivateKey mode reads the key with an RSA-only parser, so the EC P-256 (ES256) key Okta accepts for "
    "private_key_jwt cannot be used",
    "https://github.com/okta/okta-sdk-python/blob/master/okta/jwt.py",
)
PY_PASSCODE_DEFECT = (
    "the SDK's UserFactorVerifyRequest model has only useNumberMatchingChallenge, so verify_factor cannot send "
    "passCode",
    "https://github.com/okta/okta-sdk-python/blob/master/okta/models/user_factor_verify_request.py",
)

RESULTS = []


class KnownDefect(Exception):
    """A bug in the SDK itself (not the fake), with its upstream reference."""

    def __init__(self, msg, url):
        super().__init__(f"{msg} ({url})")


def record(name, status, detail=""):
    RESULTS.append((name, status))
    print(f"{status:<16} okta-python {name}{': ' + detail if detail else ''}", flush=True)


async def check(name, fn):
    try:
        detail = await fn()
        record(name, "PASS", detail or "")
    except KnownDefect as e:
        record(name, "KNOWN-SDK-DEFECT", str(e))
    except Exception as e:  # noqa: BLE001 - every failure is reported as a FAIL line
        record(name, "FAIL", f"{type(e).__name__}: {e}")


def expect(cond, msg):
    if not cond:
        raise AssertionError(msg)


def ok(result):
    """The SDK returns (data, response, error) tuples (or (response, error) for bodiless calls)."""
    err = result[-1]
    if err is not None:
        raise AssertionError(f"SDK error: {err}")
    return result[0] if len(result) == 3 else None


def api_error(result, status, code):
    err = result[-1]
    expect(err is not None, f"no error, want {status} {code}")
    got_status = getattr(err, "status", None)
    got_code = getattr(err, "error_code", None)
    expect(got_status == status and got_code == code, f"got {got_status} {got_code}, want {status} {code}: {err}")
    return f"{status} {code}"


def control(method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(BASE + path, data=data, method=method)
    if data is not None:
        req.add_header("content-type", "application/json")
    with urllib.request.urlopen(req, timeout=10) as r:
        raw = r.read()
    return json.loads(raw) if raw else None


def attr(obj, *path):
    """Walks snake_case attributes of SDK models, looking through anyOf/oneOf wrappers (`actual_instance`)."""
    for name in path:
        obj = getattr(obj, "actual_instance", None) or obj
        obj = getattr(obj, name, None)
        if obj is None:
            return None
    return getattr(obj, "actual_instance", None) or obj


def enum_value(v):
    return getattr(v, "value", v)


def sdk_verify_model_defect(e):
    """The SDK's UserFactorVerifyResponseWaiting types `profile` as a map of objects; Okta (and the fake) send
    `profile.credentialId` as a string, so pydantic refuses the documented push response."""
    return "credentialId" in str(e) and "dict" in str(e)


def raw_get(path):
    """A GET outside the SDK (documented header), to tell an SDK parsing defect from a wrong answer."""
    req = urllib.request.Request(BASE + path, headers={"Authorization": "SSWS " + TOKEN, "Accept": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)


def make_client(extra=None):
    # The fake is plain http on loopback; the SDK reads this switch only from the environment or a YAML file.
    os.environ["OKTA_TESTING_TESTINGDISABLEHTTPSCHECK"] = "true"
    config = {
        "orgUrl": BASE,
        # No response cache: a push poll must reach the server every time.
        "cache": {"enabled": False},
        "rateLimit": {"maxRetries": 0},
    }
    # The SDK writes "SSWS" + token with no space (PY_SSWS_DEFECT); a leading space in the token makes the
    # documented "SSWS <token>". The check ssws_header_as_sent shows the SDK's own header.
    config.update(extra or {"token": " " + TOKEN})
    return OktaClient(config)


async def main():
    client = make_client()
    push = {}

    async def ssws_header_as_sent():
        plain = make_client({"token": TOKEN})
        result = await plain.get_user(ALICE)
        err = result[-1]
        if err is not None and getattr(err, "status", None) == 401:
            # Only the SDK's fault if the same token works with the documented header.
            expect(raw_get(f"/api/v1/users/{ALICE}").get("id") == ALICE, "the token fails with 'SSWS <token>' too")
            raise KnownDefect(*PY_SSWS_DEFECT)
        expect(ok(result).id == ALICE, "wrong user")

    async def get_user_by_id():
        u = ok(await client.get_user(ALICE))
        expect(u.id == ALICE, f"id {u.id}")
        expect(enum_value(u.status) == "ACTIVE", f"status {u.status}")
        expect(attr(u, "profile", "login") == "alice@example.com", f"login {attr(u, 'profile', 'login')}")

    async def get_user_by_login():
        u = ok(await client.get_user("alice@example.com"))
        expect(u.id == ALICE, f"id {u.id}")

    async def get_user_unknown_404():
        return api_error(await client.get_user("00unobody00000000000"), 404, "E0000007")

    async def search_users():
        users = ok(await client.list_users(search='profile.login eq "alice@example.com"'))
        expect([u.id for u in users] == [ALICE], f"got {[u.id for u in users]}")

    async def list_factors():
        factors = ok(await client.list_factors(ALICE))
        got = sorted((enum_value(attr(f, "factor_type")), attr(f, "id")) for f in factors)
        want = [("push", ALICE_PUSH), ("token:software:totp", ALICE_TOTP)]
        expect(got == want, f"factors {got}")

    async def list_user_groups():
        groups = ok(await client.list_user_groups(CAROL))
        names = [attr(g, "profile", "name") for g in groups]
        expect("fctr-protected" in names and "Everyone" in names, f"groups {names}")

    async def send_push():
        """Sends a number-matching push; returns (transaction id, number, known SDK defect or None)."""
        try:
            r = ok(
                await client.verify_factor(
                    ALICE,
                    ALICE_PUSH,
                    user_agent="fctr-sdk-interop",
                    body=UserFactorVerifyRequest(use_number_matching_challenge=True),
                )
            )
        except Exception as e:  # noqa: BLE001
            if not sdk_verify_model_defect(e):
                raise
            # The push went out (the fake lists it); continue the run with its transaction.
            pending = [p for p in control("GET", "/_fake/pushes") if p["factorId"] == ALICE_PUSH]
            expect(pending, "verify failed and no push was sent")
            return pending[-1]["transactionId"], pending[-1]["correctAnswer"], KnownDefect(
                "the SDK's UserFactorVerifyResponseWaiting types profile as a map of objects and refuses "
                "the documented profile.credentialId string",
                "https://github.com/okta/okta-sdk-python/blob/master/okta/models/user_factor_verify_response_waiting.py",
            )
        expect(enum_value(attr(r, "factor_result")) == "WAITING", f"factorResult {attr(r, 'factor_result')}")
        n = attr(r, "embedded", "challenge", "correct_answer")
        href = attr(r, "links", "poll", "href")
        expect(isinstance(n, int), f"correctAnswer {n}")
        expect(href, "no poll link")
        return href.rsplit("/", 1)[1], n, None

    async def push_verify():
        tx, n, defect = await send_push()
        push["tx"], push["n"] = tx, n
        if defect:
            raise defect
        return f"correctAnswer {n}"

    async def poll(tx):
        t = ok(await client.get_factor_transaction_status(ALICE, ALICE_PUSH, tx))
        return enum_value(attr(t, "factor_result"))

    async def push_poll_waiting():
        r = await poll(push["tx"])
        expect(r == "WAITING", f"factorResult {r}")

    async def push_poll_success():
        control("POST", f"/_fake/pushes/{push['tx']}/answer", {"action": "approve", "number": push["n"]})
        r = await poll(push["tx"])
        expect(r == "SUCCESS", f"factorResult {r}")

    async def push_poll_rejected():
        tx, _, _ = await send_push()
        control("POST", f"/_fake/pushes/{tx}/answer", {"action": "deny"})
        try:
            r = await poll(tx)
        except ValueError as e:
            if "discriminator" not in str(e) or '"href"' not in str(e):
                raise
            # Only the SDK's fault if the fake answered the documented REJECTED body.
            raw = raw_get(f"/api/v1/users/{ALICE}/factors/{ALICE_PUSH}/transactions/{tx}")
            expect(raw.get("factorResult") == "REJECTED", f"fake answered {raw}")
            expect("href" in raw.get("_links", {}).get("factor", {}), f"fake answered {raw}")
            raise KnownDefect(
                "the SDK types the REJECTED transaction's _links.factor as a UserFactor, not a link, and fails "
                "to parse the documented body",
                "https://github.com/okta/okta-sdk-python/blob/master/okta/models/"
                "user_factor_push_transaction_rejected_all_of_links.py",
            ) from e
        expect(r == "REJECTED", f"factorResult {r}")

    async def totp_verify():
        code = control("GET", f"/_fake/totp/{BOB}")["passCode"]
        body = UserFactorVerifyRequest.from_dict({"passCode": code})
        if "passCode" not in json.dumps(body.to_dict() if body else {}):
            # The model drops the code: the SDK cannot send the documented {"passCode": …} body.
            raise KnownDefect(*PY_PASSCODE_DEFECT)
        r = ok(await client.verify_factor(BOB, BOB_TOTP, body=body))
        res = enum_value(attr(r, "factor_result"))
        expect(res == "SUCCESS", f"factorResult {res}")

    async def clear_sessions():
        ok(await client.revoke_user_sessions(BOB, oauth_tokens=True))
        fx = control("GET", f"/_fake/users/{BOB}/effects")
        expect(fx["sessionsRevoked"] == 1 and fx["oauthTokensRevoked"] == 1, f"effects {fx}")

    async def reset_password():
        r = ok(await client.reset_password(FRANK, send_email=False))
        url = attr(r, "reset_password_url")
        expect(isinstance(url, str) and url.startswith("http"), f"resetPasswordUrl {url}")

    async def expire_password_temp():
        r = ok(await client.expire_password_with_temp_password(DAVE))
        pw = attr(r, "temp_password")
        if not pw:
            # Only the SDK's fault if the fake did mint a temporary password for this call.
            fx = control("GET", f"/_fake/users/{DAVE}/effects")
            expect(fx["tempPasswordsIssued"] == 1, f"no tempPassword and the fake issued none: {fx}")
            raise KnownDefect(
                'the SDK types the response as User and drops {"tempPassword": …} (the spec error fixed for '
                ".NET in okta/okta-sdk-dotnet#853 and Node in okta/okta-sdk-nodejs#504)",
                "https://github.com/okta/okta-sdk-python/blob/master/okta/api/user_cred_api.py",
            )

    async def unlock():
        ok(await client.unlock_user(ERIN))
        u = ok(await client.get_user(ERIN))
        expect(enum_value(u.status) == "ACTIVE", f"status {u.status}")

    async def reset_factors():
        ok(await client.reset_factors(CAROL))
        factors = ok(await client.list_factors(CAROL))
        expect(len(factors) == 0, f"{len(factors)} factors left")

    async def suspend():
        ok(await client.suspend_user(IVAN))
        u = ok(await client.get_user(IVAN))
        expect(enum_value(u.status) == "SUSPENDED", f"status {u.status}")

    async def unsuspend():
        ok(await client.unsuspend_user(IVAN))
        u = ok(await client.get_user(IVAN))
        expect(enum_value(u.status) == "ACTIVE", f"status {u.status}")

    async def unenroll():
        ok(await client.unenroll_factor(BOB, BOB_TOTP))
        factors = ok(await client.list_factors(BOB))
        expect(BOB_TOTP not in [f.id for f in factors], "factor still listed")

    async def private_key_jwt():
        with open(os.environ["FAKE_OKTA_KEY_PEM"], encoding="utf-8") as f:
            pem = f.read()
        pk = make_client(
            {
                "authorizationMode": "PrivateKey",
                "clientId": os.environ["FAKE_OKTA_CLIENT_ID"],
                "kid": os.environ["FAKE_OKTA_KEY_ID"],
                "scopes": ["okta.users.read", "okta.users.manage"],
                "privateKey": pem,
            }
        )
        try:
            result = await pk.get_user(ALICE)
        except ValueError as e:
            # The fake's service app key is EC P-256 (PKCS#8), which Okta accepts for private_key_jwt.
            if "RSA key format is not supported" in str(e):
                raise KnownDefect(*PY_EC_KEY_DEFECT) from e
            raise
        u = ok(result)
        expect(u.id == ALICE, f"id {u.id}")

    await check("ssws_header_as_sent", ssws_header_as_sent)
    await check("get_user_by_id", get_user_by_id)
    await check("get_user_by_login", get_user_by_login)
    await check("get_user_unknown_404", get_user_unknown_404)
    await check("search_users_by_login", search_users)
    await check("list_factors", list_factors)
    await check("list_user_groups", list_user_groups)
    await check("push_verify_number_matching", push_verify)
    await check("push_poll_waiting", push_poll_waiting)
    await check("push_poll_success_after_approve", push_poll_success)
    await check("push_poll_rejected_after_deny", push_poll_rejected)
    await check("totp_verify_success", totp_verify)
    await check("clear_sessions", clear_sessions)
    await check("reset_password_link", reset_password)
    await check("expire_password_with_temp_password", expire_password_temp)
    await check("unlock", unlock)
    await check("reset_factors", reset_factors)
    await check("suspend", suspend)
    await check("unsuspend", unsuspend)
    await check("unenroll_factor", unenroll)
    if os.environ.get("FAKE_OKTA_KEY_PEM"):
        await check("private_key_jwt_service_app", private_key_jwt)

    count = lambda s: sum(1 for _, st in RESULTS if st == s)  # noqa: E731
    print(f"okta-python: {count('PASS')} PASS, {count('KNOWN-SDK-DEFECT')} KNOWN-SDK-DEFECT, {count('FAIL')} FAIL")
    return 1 if count("FAIL") else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
