"""Step credentials: what the controller signs and node daemons check before running a step.

Slurm's job credential, in spirit: an HMAC-SHA256 over the facts a node must
not be fooled about (job, step, uid, node list, expiry), keyed by the cluster's
credential key. It lives here, outside ``controller/`` and ``noded/``, because
both daemons need the one definition of the format.
"""

import hashlib
import hmac
import time


def sign_step(key, job_id, step_id, uid, nodelist, expires):
    """Slurm's job credential, in spirit: an HMAC over what a node must not be fooled about."""
    msg = f"{job_id}:{step_id}:{uid}:{nodelist}:{int(expires)}".encode()
    return f"{int(expires)}:{hmac.new(key, msg, hashlib.sha256).hexdigest()}"


def verify_step(key, credential, job_id, step_id, uid, nodelist, now=None):
    """True if ``credential`` was signed by the controller for exactly this step and is unexpired."""
    try:
        expires_text, digest = credential.split(":", 1)
        expires = int(expires_text)
    except (AttributeError, ValueError):
        return False
    if (now or time.time()) > expires:
        return False
    want = sign_step(key, job_id, step_id, uid, nodelist, expires).split(":", 1)[1]
    return hmac.compare_digest(want, digest)
