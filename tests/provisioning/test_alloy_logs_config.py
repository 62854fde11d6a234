"""roles/observability/templates/atlas-logs.alloy.j2: renders as Ansible renders it, in the Alloy syntax
and with the components Alloy v1.18.1 documents, wired source -> process -> write.

The parse is tests/support/alloy_syntax.py, a reimplementation of the syntax subset the file uses (no
Alloy binary or parser is installable from PyPI, npm or Debian 12); the real parse happens only when
the observability role runs Alloy in a cluster.
"""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleError

from tests.support import alloy_config
from tests.support.alloy_components import problems
from tests.support.alloy_log_pipeline import Pipeline, label_names, pod_targets
from tests.support.alloy_syntax import AlloySyntaxError, parse


def _source() -> str:
    with open(alloy_config.TEMPLATE) as fh:
        return fh.read()


def test_renders_to_components_alloy_accepts():
    components = alloy_config.components()
    assert problems(components) == []
    assert [(c.name, c.label) for c in components] == [
        ("discovery.kubernetes", "atlas_pods"),
        ("discovery.relabel", "atlas_pods"),
        ("loki.source.kubernetes", "atlas_pods"),
        ("loki.process", "atlas"),
        ("loki.write", "loki"),
    ]
    pipeline = Pipeline(components)  # one chain: discovery -> relabel -> source -> process -> write
    assert (pipeline.process.label, pipeline.write.label) == ("atlas", "loki")
    assert label_names(components) == {"namespace", "service_name", "container"}


def test_leaves_nothing_for_helm_tpl():
    """The Alloy chart passes alloy.configMap.content through Helm's tpl (grafana/alloy v1.18.1,
    operations/helm/charts/alloy/templates/configmap.yaml): a {{ left in would be Helm's to evaluate."""
    rendered = alloy_config.render()
    assert "{{" not in rendered and "{%" not in rendered and "{#" not in rendered


def test_the_namespace_is_the_inventorys():
    components = alloy_config.components(namespace="team-a")
    discovery = next(c for c in components if c.name == "discovery.kubernetes")
    assert discovery.children("namespaces")[0].attributes["names"] == ["team-a"]
    pipeline = Pipeline(components)
    pod = {"app.kubernetes.io/part-of": "atlas", "app.kubernetes.io/component": "users"}
    (here,) = pod_targets("team-a", "atlas-users-1", "uid-1", pod, {"containers": [{"name": "users"}]})
    (elsewhere,) = pod_targets("atlas", "atlas-users-1", "uid-1", pod, {"containers": [{"name": "users"}]})
    assert pipeline.discovers(here) and not pipeline.discovers(elsewhere)
    assert pipeline.entry(here, "{}").labels["namespace"] == "team-a"
    other_app = {**pod, "app.kubernetes.io/part-of": "something-else"}
    (foreign,) = pod_targets("team-a", "x-1", "uid-2", other_app, {"containers": [{"name": "x"}]})
    assert not pipeline.discovers(foreign)


def test_one_place_names_loki():
    components = alloy_config.components(push_url="http://loki.example:3100/loki/api/v1/push")
    (write,) = [c for c in components if c.name == "loki.write"]
    assert [e.attributes["url"] for e in write.children("endpoint")] == ["http://loki.example:3100/loki/api/v1/push"]
    rendered = alloy_config.render()
    assert rendered.count(alloy_config.effective_push_url()) == 1  # nowhere but there
    assert rendered.count("/loki/api/v1/push") == 1


def test_without_a_push_url_rendering_fails_loudly():
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar, trust_as_template

    templar = Templar(loader=DataLoader(), variables={"atlas_namespace": "atlas"})
    with pytest.raises(AnsibleError, match="observability_loki_push_url"):
        templar.template(trust_as_template(_source()))


# -- the structural check can fail --------------------------------------------------------------


@pytest.mark.parametrize(
    "broken, message",
    [
        ('expressions = {\n      level  = "",\n      logger = ""\n    }', "missing ','"),  # last element's comma
        ('loki.write "loki"\n{', "expected {"),  # a block's brace on the next line
        ('role = "pod"', None),  # set twice below
    ],
)
def test_the_parser_refuses_what_alloy_refuses(broken, message):
    source = alloy_config.render()
    if message is None:
        source = source.replace('role = "pod"', 'role = "pod"\n  role = "pod"', 1)
        message = "set twice"
    elif broken.startswith("expressions"):
        source = source.replace('expressions = {\n      level  = "",\n      logger = "",\n    }', broken)
    else:
        source = source.replace('loki.write "loki" {', broken)
    with pytest.raises(AlloySyntaxError, match=message):
        parse(source)


@pytest.mark.parametrize(
    "old, new, found",
    [
        ("forward_to = [loki.write.loki.receiver]", "forward_to = [loki.write.lokii.receiver]", "names no component"),
        (
            "targets = discovery.kubernetes.atlas_pods.targets",
            "targets = discovery.kubernetes.atlas_pods.output",
            "exports no output",
        ),
        (
            "forward_to = [loki.process.atlas.receiver]",
            "forward_to = [discovery.relabel.atlas_pods.output]",
            "forward_to takes receivers",
        ),
        ('role = "pod"\n', 'role = "pod"\n  namespace = "atlas"\n', "argument namespace not in the spec"),
        ("stage.label_keep {", "stage.labels_keep {", "block stage.labels_keep not in the spec"),
        ("url = ", "address = ", "required argument url missing"),
    ],
)
def test_the_component_check_refuses_what_alloy_refuses(old, new, found):
    source = alloy_config.render()
    assert old in source
    found_problems = problems(parse(source.replace(old, new, 1)))
    assert any(found in p for p in found_problems), found_problems
