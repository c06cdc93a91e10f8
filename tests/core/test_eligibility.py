from hypothesis import given
from hypothesis import strategies as st

from arkwright.core.eligibility import EligibilityIndex, ineligibility_reason
from arkwright.core.policy_data import Classification, DataPolicy, PersonalData


def pools_for(fleet, policy, tenant="research", gpu_types=None):
    cls = EligibilityIndex(fleet).classify(tenant, policy, gpu_types)
    return {fleet.pools[i].name for i in cls.pools}


def test_no_policy_may_use_every_pool(tiny):
    assert pools_for(tiny, DataPolicy()) == {p.name for p in tiny.pools}


def test_uk_residency_keeps_work_in_uk(tiny):
    assert pools_for(tiny, DataPolicy.parse(residency="UK")) == {"uk-a/h100", "uk-a/b200"}


def test_personal_data_may_go_to_eu_but_not_us(tiny):
    pools = pools_for(tiny, DataPolicy(personal_data=PersonalData.PERSONAL))
    assert "eu-b/a100" in pools and "us-c/h200" not in pools


def test_health_data_needs_a_uk_dspt_site(tiny):
    pools = pools_for(tiny, DataPolicy(personal_data=PersonalData.HEALTH))
    assert pools == {"uk-a/h100", "uk-a/b200"}


def test_classification_needs_accreditation(tiny):
    sensitive = DataPolicy(classification=Classification.OFFICIAL_SENSITIVE)
    assert pools_for(tiny, sensitive) == {"uk-a/h100", "uk-a/b200"}
    assert pools_for(tiny, DataPolicy(classification=Classification.SECRET)) == set()


def test_gpu_types_filter(tiny):
    assert pools_for(tiny, DataPolicy(), gpu_types=frozenset({"A100", "H200"})) == {
        "eu-b/a100",
        "us-c/h200",
    }


def test_reason_names_the_rule(tiny):
    us_pool = next(p for p in tiny.pools if p.site.jurisdiction == "US")
    reason = ineligibility_reason(
        us_pool, tiny.tenant("nhs"), DataPolicy.parse(residency="UK|EU"), None
    )
    assert "US" in reason and "us-c" in reason


def test_classes_are_interned(tiny):
    index = EligibilityIndex(tiny)
    a = index.classify("research", DataPolicy.parse(residency="UK"), None)
    b = index.classify("research", DataPolicy.parse(residency="uk"), None)
    assert a is b and len(index.classes) == 1


def test_stricter_policy_is_detected():
    loose = DataPolicy()
    strict = DataPolicy.parse("UK", "OFFICIAL-SENSITIVE", "health")
    assert strict.at_least_as_strict_as(loose)
    assert not loose.at_least_as_strict_as(strict)


@given(
    st.sampled_from([None, frozenset({"UK"}), frozenset({"UK", "EU"})]),
    st.sampled_from(list(Classification)),
    st.sampled_from(list(PersonalData)),
    st.sampled_from([None, frozenset({"UK"}), frozenset({"UK", "EU"})]),
    st.sampled_from(list(Classification)),
    st.sampled_from(list(PersonalData)),
)
def test_policies_are_equal_and_hash_alike_exactly_when_their_fields_are(r1, c1, p1, r2, c2, p2):
    # DataPolicy writes out its own __eq__ and __hash__ (compiled, unlike generated ones):
    # the eligibility index keys its classes by them, so two equal policies made apart
    # must find the same class and two that differ in any field must not.
    a, b = DataPolicy(r1, c1, p1), DataPolicy(r2, c2, p2)
    same = (r1, c1, p1) == (r2, c2, p2)
    assert (a == b) is same and (a != b) is not same
    assert hash(a) == hash(DataPolicy(r1, c1, p1))
    assert ({a: 1}.get(b) == 1) is same
    assert a != (r1, c1, p1)
