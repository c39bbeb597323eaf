"""pipeline.py: what the demo (tests/demo/demo.py) and the chaos run (tests/chaos/chaos.py)
both need to stand up and read the pipeline on loopback: free ports, the webhook registration
in espocrm-sim, and phone numbers compared as the sync compares them. Standard library only."""
import socket


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def register_webhooks(http, espo_url, api_key, webhook_port):
    """Registers create/update/delete webhooks of CBeteiligte in espocrm-sim pointing at the
    producer on webhook_port (http: the caller's (method, url, body, headers) -> (status, json)).
    Returns the WEBHOOK_SECRETS value; None when espocrm-sim refused one."""
    secrets = []
    for ev in ("create", "update", "delete"):
        st, out = http("POST", espo_url + "/api/v1/Webhook",
                       {"event": "CBeteiligte." + ev, "skipOwn": True,
                        "url": f"http://127.0.0.1:{webhook_port}/webhook/beteiligte/{ev}"},
                       {"X-Api-Key": api_key})
        if st not in (200, 201):
            return None
        secrets.append(f"{out['id']}:{out['secretKey']}")
    return ",".join(secrets)


def phone_key(value):
    """A German phone number as the sync compares it (SPEC §5.4: E.164, national numbers in
    PHONE_DEFAULT_COUNTRY = DE). Enough for the scripts' numbers; the product uses
    libphonenumber."""
    digits = "".join(c for c in (value or "") if c.isdigit() or c == "+")
    if digits.startswith("00"):
        return "+" + digits[2:]
    if digits.startswith("0"):
        return "+49" + digits[1:]
    return digits
