"""sacctmgr's argument words and tables, as Slurm spells them."""

import pytest

from batch_backend.cli import formats_sacctmgr as fm
from batch_backend.cli.common import CommandError
from batch_backend.cli.sacctmgr import parse_words


def test_where_and_set_words_become_conditions_and_settings():
    names, where, settings, flags, fmt = parse_words("user", [
        "where", "name=alice", "account=phys", "set", "DefaultAccount=phys", "MaxJobs=4", "GrpTRES=cpu=8,mem=2G",
        "MaxWall=1-00:00:00", "QOS+=high", "fairshare=-1"])
    assert where == {"names": ["alice"], "accounts": ["phys"]}
    assert settings == {"default_account": "phys", "max_jobs": 4, "grp_tres": {"cpu": 8, "mem": 2048},
                        "max_wall": 1440, "qos_add": ["high"], "fairshare": None}


def test_qos_maxjobs_means_per_user_and_names_before_where_are_names():
    names, where, settings, flags, fmt = parse_words("qos", ["gold", "MaxJobs=2", "format=name,priority",
                                                             "withassoc"])
    assert names == ["gold"] and where == {"max_jobs_pu": 2} and fmt == "name,priority" and "withassoc" in flags


def test_bad_words_are_slurm_style_errors():
    with pytest.raises(CommandError, match="Unknown option: Bogus=1"):
        parse_words("account", ["set", "Bogus=1"])
    with pytest.raises(CommandError, match="Bad MaxJobs value: many"):
        parse_words("account", ["set", "MaxJobs=many"])


def test_table_layout_matches_sacctmgr():
    rows = [{"account": "root", "description": "default root account", "organization": "root"}]
    text = fm.render(rows, fm.parse_format(fm.DEFAULT_FORMATS["account"]))
    assert text == ("   Account                Descr                  Org \n"
                    "---------- -------------------- -------------------- \n"
                    "      root default root account                 root \n")
    assert fm.render(rows, fm.parse_format("acct,org"), parsable="no_ending") == "Account|Org\nroot|root\n"
    assert fm.render(rows, fm.parse_format("acct"), parsable="ending", header=False) == "root|\n"


def test_long_values_are_cut_with_a_plus_and_widths_can_be_set():
    rows = [{"user": "root", "admin_level": "Administrator", "cluster": "testcluster"}]
    assert fm.render(rows, fm.parse_format("admin,cluster%12"), header=False) == "Administ+  testcluster \n"


def test_unknown_field_is_refused():
    with pytest.raises(fm.FieldError, match="Unknown field 'nosuch'"):
        fm.parse_format("account,nosuch")
