"""Step credentials: only the controller's key, for exactly this step, before expiry."""

from batch_backend.credential import sign_step, verify_step

KEY = b"k" * 32


def test_valid_credential_verifies():
    cred = sign_step(KEY, 7, 0, 1000, "n[1-2]", 2000)
    assert verify_step(KEY, cred, 7, 0, 1000, "n[1-2]", now=1000)


def test_credential_for_another_job_step_user_or_nodes_is_refused():
    cred = sign_step(KEY, 7, 0, 1000, "n[1-2]", 2000)
    assert not verify_step(KEY, cred, 8, 0, 1000, "n[1-2]", now=1000)
    assert not verify_step(KEY, cred, 7, 1, 1000, "n[1-2]", now=1000)
    assert not verify_step(KEY, cred, 7, 0, 0, "n[1-2]", now=1000)
    assert not verify_step(KEY, cred, 7, 0, 1000, "n[1-3]", now=1000)


def test_expired_forged_or_malformed_credentials_are_refused():
    cred = sign_step(KEY, 7, 0, 1000, "n1", 2000)
    assert not verify_step(KEY, cred, 7, 0, 1000, "n1", now=2001)
    assert not verify_step(b"x" * 32, cred, 7, 0, 1000, "n1", now=1000)
    forged = "9999999999:" + cred.split(":")[1]  # extended expiry, same digest
    assert not verify_step(KEY, forged, 7, 0, 1000, "n1", now=1000)
    for junk in ("", "abc", None, "1:2:3"):
        assert not verify_step(KEY, junk, 7, 0, 1000, "n1", now=1000)
