import json

import pytest
from typer.testing import CliRunner

from arkwright.cli import app
from arkwright.core.throughput import ThroughputTable
from arkwright.plan.economics import EconomicsError, load_model
from arkwright.plan.options import OptionsError, parse_options, with_additions
from arkwright.plan.search import PlanInputs, Planner, grow
from arkwright.plan.targets import Target, TargetError
from arkwright.sim.trace import write_trace
from tests.conftest import make_job, one_pool_fleet

HOUR = 3600.0


def option(name="more-h100", site="s", gpu="H100", nodes=1, max_units=5, capex=30000.0, **extra):
    row = {
        "name": name,
        "gpu": gpu,
        "gpus_per_node": 8,
        "nodes_per_unit": nodes,
        "max_units": max_units,
        "capex_gbp_per_gpu": capex,
        "opex_gbp_per_gpu_year": 1000,
        "price_gbp_per_gpu_hour": 2.0,
        "lead_time_months": 6,
    }
    if site is not None:
        row["site"] = site
    row.update(extra)
    return row


def pairs_every_hour(hours=24, tenant="a"):
    """Two whole-node jobs of one hour arrive together every hour."""
    return [
        make_job(
            f"{tenant}{h}-{k}",
            gpus=8,
            duration=HOUR,
            submit=h * HOUR,
            tenant=tenant,
            time_limit_s=HOUR,
        )
        for h in range(hours)
        for k in range(2)
    ]


def planner(options, jobs, targets, fleet=None):
    fleet = fleet or one_pool_fleet(nodes=1)
    parsed = parse_options({"options": options}, "menu.toml", fleet)
    inputs = PlanInputs(fleet, parsed, jobs, "backfill", ThroughputTable.flat())
    return Planner(inputs, [Target.parse(t) for t in targets], workers=1), parsed, fleet


def test_demand_that_needs_exactly_one_more_node():
    plan, _, _ = planner([option()], pairs_every_hour(), ["p95_wait<=10m"])
    result = plan.run()
    assert result.feasible and result.units == (1,)
    # One node gets twice the work it can do, so its queue grows all day; two nodes keep up.
    assert result.baseline["p95_wait_s"] > 10 * HOUR
    assert result.summary["p95_wait_s"] == 0


def test_cheaper_option_wins_and_unneeded_units_are_pruned():
    options = [option("dear", capex=90000.0), option("cheap", capex=10000.0, nodes=2)]
    plan, _, _ = planner(options, pairs_every_hour(), ["p95_wait<=10m"])
    result = plan.run()
    # 'cheap' gives two nodes per unit at a third of the price per GPU: one unit suffices.
    assert result.feasible and result.units == (0, 1)


def test_met_targets_need_nothing():
    plan, _, _ = planner([option()], pairs_every_hour()[:1], ["p95_wait<=10m"])
    result = plan.run()
    assert result.feasible and result.units == (0,) and result.evaluations == 1


def test_infeasible_target_says_which_and_why():
    health = [job for job in pairs_every_hour()]
    for job in health:
        job.gpu_types = frozenset({"H100"})
    # Only B200 is on the menu, and this work accepts H100 alone: nothing can help.
    plan, _, _ = planner([option(gpu="B200", max_units=2)], health, ["p95_wait<=10m"])
    result = plan.run()
    assert not result.feasible
    assert result.reason.startswith("infeasible: p95_wait<=10m is not met (best reached ")
    assert result.units == (0,)  # nothing was bought: no unit helped


def test_results_are_cached(tmp_path):
    fleet = one_pool_fleet(nodes=1)
    parsed = parse_options({"options": [option()]}, "menu.toml", fleet)
    inputs = PlanInputs(fleet, parsed, pairs_every_hour(), "backfill", ThroughputTable.flat())
    targets = [Target.parse("p95_wait<=10m")]
    first = Planner(inputs, targets, workers=1, cache_path=tmp_path / "cache.json").run()
    again = Planner(inputs, targets, workers=1, cache_path=tmp_path / "cache.json").run()
    assert first.evaluations > 0 and again.evaluations == 0
    assert again.cache_hits >= first.evaluations and again.units == first.units


def test_new_site_options_add_a_site():
    fleet = one_pool_fleet(nodes=1)
    menu = [
        option(
            "scot",
            site=None,
            gpu="B200",
            new_site={"name": "new-scotland", "region": "uk-scotland", "carbon_g_per_kwh": 30},
        )
    ]
    parsed = parse_options({"options": menu}, "menu.toml", fleet)
    grown = with_additions(fleet, parsed, (2,))
    assert "new-scotland" in grown.site_by_name
    assert grown.pools[-1].gpus == 16 and grown.pools[-1].site.region == "uk-scotland"


@pytest.mark.parametrize(
    "menu, needle",
    [
        ([option(site="atlantis")], "options['more-h100'].site: unknown site 'atlantis'"),
        ([option(gpu="Z900")], "unknown GPU model 'Z900'"),
        ([option(nodes=0)], "nodes_per_unit"),
        ([option(site=None)], "exactly one of site"),
        ([option(), option()], "duplicate option name"),
        ([option(colour="red")], "colour"),
        (
            [
                option(
                    site=None,
                    new_site={
                        "name": "x",
                        "region": "r",
                        "carbon_g_per_kwh": 1,
                        "accreditations": ["secret-ish"],
                    },
                )
            ],
            "new_site.accreditations",
        ),
    ],
)
def test_bad_menus_name_the_option_and_key(menu, needle):
    with pytest.raises(OptionsError) as info:
        parse_options({"options": menu}, "menu.toml", one_pool_fleet())
    assert needle in str(info.value)


@pytest.mark.parametrize(
    "text, tenant, needle",
    [
        ("p95wait<=4h", None, "unknown metric"),
        ("p95_wait<4h", None, "METRIC<=VALUE"),
        ("p95_wait<=soon", None, "not a duration"),
        ("mean_jct<=4h", "research", "per-programme metrics"),
    ],
)
def test_bad_targets(text, tenant, needle):
    with pytest.raises(TargetError, match=needle):
        Target.parse(text, tenant)


def test_targets_read_the_summary():
    summary = {
        "p95_wait_s": 7200.0,
        "gpu_utilization": 0.9,
        "by_tenant": {"research": {"p95_wait_s": 100.0, "mean_wait_s": 5.0}},
    }
    assert not Target.parse("p95_wait<=1h").met(summary)
    assert Target.parse("p95_wait<=24h", "research").met(summary)
    assert Target.parse("utilization>=85%").met(summary)
    assert Target.parse("p95_wait<=1h").shortfall(summary) == pytest.approx(1.0)


def test_growth_scales_demand_over_the_same_span():
    jobs = pairs_every_hour()
    doubled = grow(jobs, 2.0)
    assert len(doubled) == 2 * len(jobs) and len({j.job_id for j in doubled}) == len(doubled)
    assert max(j.submit_time for j in doubled) <= max(j.submit_time for j in jobs) + 600
    assert 1.3 * len(jobs) <= len(grow(jobs, 1.5, seed=1)) <= 1.7 * len(jobs)
    with pytest.raises(ValueError):
        grow(jobs, 0)


def test_economic_model_reproduces_the_published_figures():
    model = load_model()
    check = model.check_calibration()
    assert check["modest_gva_gbp"] == pytest.approx(5.0e9, rel=0.01)
    assert check["doubling_gva_gbp"] == pytest.approx(36.5e9, rel=0.01)
    assert model.gva_per_year(0) == 0
    shares = model.split(100.0, {"research": 1.0, "industry": 1.0}, weighted=True)
    assert shares["research"] > shares["industry"] and sum(shares.values()) == pytest.approx(100)


def test_economic_model_errors_are_clear(tmp_path):
    bad = tmp_path / "econ.toml"
    bad.write_text("[calibration]\nmodest_increase_fraction = 0.1\n")
    with pytest.raises(EconomicsError, match=r"econ\.toml"):
        load_model(bad)


def test_plan_command_writes_plan_and_plots(tmp_path):
    trace = tmp_path / "demand.csv"
    write_trace(trace, pairs_every_hour(hours=12))
    fleet = tmp_path / "fleet.toml"
    fleet.write_text(
        'name = "one"\n[[tenants]]\nname = "a"\n[[sites]]\nname = "s"\nregion = "uk-sw"\n'
        'jurisdiction = "UK"\noperator = "o"\ncarbon_g_per_kwh = 100\n[[sites.pools]]\n'
        'name = "p"\ngpu = "H100"\ngpus_per_node = 8\nnodes = 1\nprice_gbp_per_gpu_hour = 2\n'
    )
    menu = tmp_path / "menu.toml"
    menu.write_text(
        '[[options]]\nname = "more"\nsite = "s"\ngpu = "H100"\ngpus_per_node = 8\n'
        "nodes_per_unit = 1\nmax_units = 3\ncapex_gbp_per_gpu = 30000\n"
        "price_gbp_per_gpu_hour = 2\nlead_time_months = 6\n"
    )
    out = tmp_path / "plan"
    runner = CliRunner()
    result = runner.invoke(
        app,
        [
            "plan",
            "--fleet",
            str(fleet),
            "--demand",
            str(trace),
            "--options",
            str(menu),
            "--target",
            "p95_wait<=10m",
            "--target-for",
            "a",
            "mean_wait<=1h",
            "--workers",
            "1",
            "--out",
            str(out),
        ],
        env={"COLUMNS": "150"},
    )
    assert result.exit_code == 0, result.output
    report = json.loads((out / "plan.json").read_text())
    assert report["feasible"] and report["additions"][0]["units"] == 1
    assert report["economics"]["gva_gbp_per_year"] > 0 and report["energy"]["peak_mw"] > 0
    for name in ("cost_vs_service.png", "additions_by_region.png", "energy_carbon.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG"
    harder = runner.invoke(
        app,
        [
            "plan",
            "--fleet",
            str(fleet),
            "--demand",
            str(trace),
            "--options",
            str(menu),
            "--target",
            "p95_wait<=10m",
            "--growth",
            "4",
            "--workers",
            "1",
            "--out",
            str(out),
        ],
    )
    assert harder.exit_code == 2 and "infeasible: p95_wait<=10m is not met" in harder.output
