"""PurgeJobAfter values and accounting URLs, as slurm.conf spells them."""

import pytest

from batch_backend.accounting import AccountingConfigError, open_store, parse_purge_age, redact


@pytest.mark.parametrize("text,seconds", [
    ("12", 12 * 30 * 86400),          # Slurm: a bare number is months
    ("36hours", 36 * 3600), ("2days", 2 * 86400), ("1month", 30 * 86400), ("6months", 180 * 86400),
    ("90minutes", 5400), ("5seconds", 5), ("5 Seconds", 5),
    (None, None), ("", None),
])
def test_purge_job_after_units(text, seconds):
    assert parse_purge_age(text) == seconds


@pytest.mark.parametrize("text", ["-1", "3weeks", "days", "1.5days", "12 hours later"])
def test_purge_job_after_rejects_what_slurm_would_not_read(text):
    with pytest.raises(AccountingConfigError, match="PurgeJobAfter"):
        parse_purge_age(text)


def test_no_url_means_the_journal_is_the_store():
    assert open_store("", "c") is None


@pytest.mark.parametrize("url,message", [
    ("mysql://host/db", "unsupported scheme 'mysql'"),
    ("sqlite://relative.db", "absolute"),
])
def test_unusable_urls_are_refused(url, message):
    with pytest.raises(AccountingConfigError, match=message):
        open_store(url, "c")


def test_passwords_never_shown():
    assert redact("postgresql://acct:s3cret@db:5432/slurm") == "postgresql://acct:***@db:5432/slurm"
    assert redact("postgresql://acct@db/slurm") == "postgresql://acct@db/slurm"
