"""sprio and sshare output, byte for byte, from hand-made controller answers."""

import pytest

from batch_backend.cli import sprio, sshare
from batch_backend.cli.common import CommandError

WEIGHTS = {"age": 1000, "fairshare": 100000, "jobsize": 100, "partition": 0, "qos": 0, "assoc": 0, "tres": {}}


def opts(**kw):
    base = {"noheader": False, "jobs": [], "long": False, "format": None, "sort": None, "partitions": [],
            "users": [], "norm": False, "weights": False}
    base.update(kw)
    return base


def pjob(job_id, user, priority, age, fs, size, nice=0, direct=False):
    return {"job_id": job_id, "display_id": str(job_id), "user": user, "account": "", "qos": "normal",
            "partition": "debug", "nice": nice, "direct": direct, "priority": priority,
            "factors": {"age": age / 1000, "fairshare": fs / 100000, "jobsize": size / 100, "partition": 0.0,
                        "qos": 0.0, "tres": {}},
            "weighted": {"age": age, "fairshare": fs, "jobsize": size, "partition": 0.0, "qos": 0.0, "tres": {}}}


ANSWER = {"priority_type": "priority/multifactor", "weights": WEIGHTS,
          "jobs": [pjob(12, "bob", 100118, 18.4, 100000, 100), pjob(7, "ana", 25092, 17.2, 25000.0, 75)]}


def test_sprio_default_columns_are_the_weighted_factors_sorted_by_job_id():
    assert sprio.render(ANSWER, opts()) == (
        "          JOBID PARTITION   PRIORITY       SITE        AGE  FAIRSHARE    JOBSIZE\n"
        "              7 debug          25092          0         17      25000         75\n"
        "             12 debug         100118          0         18     100000        100\n")


def test_sprio_long_shows_every_factor_and_nice():
    out = sprio.render(ANSWER, opts(long=True)).splitlines()
    assert out[0] == ("          JOBID PARTITION     USER   PRIORITY       SITE        AGE      ASSOC  FAIRSHARE"
                      "    JOBSIZE  PARTITION        QOS        NICE                 TRES")
    assert out[1].split() == ["7", "debug", "ana", "25092", "0", "17", "0", "25000", "75", "0", "0", "0"]


def test_sprio_normalized_weights_and_custom_format():
    norm = sprio.render(ANSWER, opts(norm=True)).splitlines()
    assert norm[1].split()[2:] == ["0.00000584", "0", "0.0172000", "0.2500000", "0.7500000"]
    assert sprio.render(ANSWER, opts(weights=True)).splitlines()[1].split() == ["Weights", "1", "1000", "100000", "100"]
    assert sprio.render(ANSWER, opts(format="%i|%u|%Y", noheader=True)) == "7|ana|25092\n12|bob|100118\n"
    assert sprio.render(ANSWER, opts(format="%.4i %5u", noheader=True, sort="-Y")).splitlines()[0] == "  12 bob  "


def test_sprio_admin_set_priority_shows_no_factors():
    answer = dict(ANSWER, jobs=[pjob(3, "ana", 5, 0, 0, 0, direct=True)])
    assert sprio.render(answer, opts(long=True, noheader=True)).split()[3:12] == ["5", "0", "0", "0", "0", "0", "0",
                                                                                  "0", "0"]


def test_sprio_unknown_job_ids():
    assert sprio.render(dict(ANSWER, jobs=[]), opts(jobs=["99"])) == \
        "Unable to find jobs matching user/id(s) specified\n"


ROWS = [
    {"account": "root", "user": None, "parent": None, "depth": 0, "raw_shares": None, "norm_shares": 1.0,
     "raw_usage": 1000.4, "norm_usage": 1.0, "effective_usage": 1.0, "fairshare": None},
    {"account": "phys", "user": None, "parent": "root", "depth": 1, "raw_shares": 3, "norm_shares": 0.75,
     "raw_usage": 600.0, "norm_usage": 0.6, "effective_usage": 0.6, "fairshare": 0.574349},
    {"account": "phys", "user": "ana", "parent": "phys", "depth": 2, "raw_shares": 1, "norm_shares": 0.375,
     "raw_usage": 600.0, "norm_usage": 0.6, "effective_usage": 0.6, "fairshare": 0.329877},
    {"account": "phys", "user": "bob", "parent": "phys", "depth": 2, "raw_shares": 1, "norm_shares": 0.375,
     "raw_usage": 0.0, "norm_usage": 0.0, "effective_usage": 0.3, "fairshare": 0.574349},
]


def sopts(**kw):
    base = {"accounts": [], "all": False, "long": False, "noheader": False, "format": [], "parsable": False,
            "parsable2": False, "users": [], "users_only": False}
    base.update(kw)
    return base


def test_sshare_default_table_is_slurms():
    assert sshare.render(ROWS, sopts(), "ana") == (
        "Account                    User  RawShares  NormShares    RawUsage  EffectvUsage  FairShare \n"
        "-------------------- ---------- ---------- ----------- ----------- ------------- ---------- \n"
        "root                                          1.000000        1000      1.000000            \n"
        " phys                                    3    0.750000         600      0.600000   0.574349 \n"
        "  phys" + " " * 22 + "ana          1    0.375000         600      0.600000   0.329877 \n")


def test_sshare_all_parsable_and_filters():
    assert sshare.render(ROWS, sopts(all=True, parsable2=True, format=["Account,User,RawUsage"]), "x") == (
        "Account|User|RawUsage\nroot||1000\n phys||600\n  phys|ana|600\n  phys|bob|0\n")
    assert sshare.render(ROWS, sopts(users=["bob"], parsable=True, noheader=True, format=["User,FairShare"]),
                         "x") == "||\n|0.574349|\nbob|0.574349|\n"
    assert sshare.render(ROWS, sopts(all=True, users_only=True, parsable2=True, noheader=True,
                                     format=["U"]), "x") == "ana\nbob\n"
    assert sshare.render(ROWS, sopts(all=True, accounts=["phys"], parsable2=True, noheader=True,
                                     format=["U"]), "x") == "\nana\nbob\n"


def test_sshare_long_adds_norm_usage_and_a_bad_field_is_an_error():
    head = sshare.render(ROWS, sopts(long=True), "ana").splitlines()[0].split()
    assert head == ["Account", "User", "RawShares", "NormShares", "RawUsage", "NormUsage", "EffectvUsage",
                    "FairShare", "GrpTRESMins", "TRESRunMins"]
    with pytest.raises(CommandError, match='Invalid field requested: "Bogus"'):
        sshare.parse_fields("Account,Bogus")
