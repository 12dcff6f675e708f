"""The design notes' Python example (PyJWT + requests), kept as it is written there except for what our
server needs, which docs/resource-servers.md ("Other languages") tells readers to change:

- CLIENT_ID (the expected audience) is the resource server's identifier, not a client id;
- INTROSPECTION_URL is the discovery document's introspection_endpoint;
- the public key comes from the JWKS (PyJWKClient, by the token's kid);
- the header's typ must be at+jwt (PyJWT does not check it).

Everything comes from the environment (set by test/e2e/python-resource-server.test.ts):
ISSUER, AUDIENCE, INTROSPECTION_URL, JWKS_URI, RS_CLIENT_ID, RS_CLIENT_SECRET, TOKEN and MODE
("jwt" or "introspect"). It prints the claims or the answer as JSON; on failure it prints
"ERROR <exception class>: <message>" and exits 1.
"""
import json
import os
import sys

import jwt
import requests

JWKS_ISSUER = os.environ["ISSUER"]
CLIENT_ID = os.environ["AUDIENCE"]
INTROSPECTION_URL = os.environ["INTROSPECTION_URL"]


def validate_jwt(token: str, public_key: str) -> dict:
    payload = jwt.decode(
        token,
        public_key,
        algorithms=["RS256"],
        audience=CLIENT_ID,
        issuer=JWKS_ISSUER,
        options={"require": ["exp", "iat", "iss", "aud"]},
    )
    return payload


def introspect_token(token: str, client_id: str, client_secret: str) -> dict:
    response = requests.post(
        INTROSPECTION_URL,
        data={"token": token},
        auth=(client_id, client_secret),
        timeout=2,
    )
    response.raise_for_status()
    data = response.json()
    if not data.get("active"):
        raise ValueError("Token inactive")
    return data


def public_key_for(token: str):
    """The JWKS key of the token's kid, after the typ check the seed example lacks."""
    header = jwt.get_unverified_header(token)
    if header.get("typ", "").lower() not in ("at+jwt", "application/at+jwt"):
        raise ValueError("not an access token")
    return jwt.PyJWKClient(os.environ["JWKS_URI"]).get_signing_key(header["kid"]).key


def main() -> None:
    token = os.environ["TOKEN"]
    try:
        if os.environ["MODE"] == "jwt":
            result = validate_jwt(token, public_key_for(token))
        else:
            result = introspect_token(token, os.environ["RS_CLIENT_ID"], os.environ["RS_CLIENT_SECRET"])
    except Exception as error:  # the test asserts on the class and message
        print(f"ERROR {type(error).__name__}: {error}")
        sys.exit(1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
