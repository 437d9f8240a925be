"""Naming an x86 CPU as libvirt names it: a model from the CPU map and the features
beyond it.

This follows the rules of libvirt's x86 CPU driver (``src/cpu/cpu_x86.c``, functions
``x86Decode``, ``x86DecodeUseCandidate``, ``x86DataToCPU`` and
``virCPUx86CompareCandidateFeatureList``, libvirt 9.0), written anew over sets of
CPUID/MSR bits:

- the models are tried newest first (the map's order, reversed); a model of another
  vendor than the CPU's is skipped, and so is one not marked for this use
  (``<decode host='on'>`` for a host CPU, ``guest='on'`` for a baseline);
- a CPU's features are found by walking the map's features in order and taking each
  whose bits are all still in the data, then removing its bits;
- for a host CPU a model is usable only when the CPU has every feature of it (a model
  that would need a feature disabled is rejected); for a guest CPU (a baseline) the
  disabled features cost a growing penalty (2, 3, 4 ...), counted the way libvirt
  counts them, and a model the input CPUs name is preferred (the only one named: chosen
  at once);
- once a model whose family/model/stepping signature matches the CPU's is found, only
  matching models can replace it, and a matching model always replaces one that does
  not; otherwise the model needing the fewest listed features wins, the newer on a tie;
- on Intel family 6 models 60, 69, 70 and 63 before stepping 4 the (broken) TSX
  features hle and rtm are dropped first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from host_pm_exporter.cpumap.loader import Bit, Bits, CpuMap, X86Model

_TSX_BROKEN = (60, 69, 70)
_BASE_PENALTY = 2


@dataclass(frozen=True)
class Decoded:
    """A CPU named by a model: the features it has beyond the model (in the map's
    order) and, for a guest CPU, the model's features it lacks."""

    model: str
    vendor: str | None
    features: tuple[str, ...]
    disabled: tuple[str, ...] = ()


def features_in(bits: Bits, cpu_map: CpuMap) -> list[str]:
    """The map's features found in `bits`, each taking its bits away (libvirt's walk)."""
    left = set(bits)
    found = []
    for feature in cpu_map.x86_features:
        if feature.bits and feature.bits <= left:
            left -= feature.bits
            found.append(feature.name)
    return found


def vendor_name(vendor_id: str, cpu_map: CpuMap) -> str | None:
    """libvirt's vendor name for a CPUID vendor string (``GenuineIntel`` -> Intel)."""
    for name, string in cpu_map.x86_vendors.items():
        if string == vendor_id:
            return name
    return None


def model_bits(model: str, features: Sequence[str], cpu_map: CpuMap, disabled: Sequence[str] = ()) -> Bits:
    """The bits a model plus required features minus disabled ones stand for."""
    known = cpu_map.model(model)
    if known is None:
        raise KeyError(model)
    bits = set(known.bits)
    for name in features:
        feature = cpu_map.feature(name)
        if feature is None:
            raise KeyError(name)
        bits |= feature.bits
    for name in disabled:
        feature = cpu_map.feature(name)
        if feature is None:
            raise KeyError(name)
        bits -= feature.bits
    return frozenset(bits)


def decode_host(
    bits: Bits,
    cpu_map: CpuMap,
    vendor: str | None,
    signature: tuple[int, int, int] | None = None,
) -> Decoded | None:
    """The model and features ``virsh capabilities`` lists for a host CPU with these
    bits, vendor (libvirt's name) and (family, model, stepping); None when no model of
    the map fits (libvirt then fails to name the CPU)."""
    return _decode(bits, cpu_map, vendor, signature, host=True, preferred=())


def decode_guest(bits: Bits, cpu_map: CpuMap, vendor: str | None, preferred: Sequence[str] = ()) -> Decoded | None:
    """The model and features of a guest CPU with these bits (a baseline's decode)."""
    return _decode(bits, cpu_map, vendor, None, host=False, preferred=tuple(preferred))


@dataclass
class _Candidate:
    model: X86Model
    features: list[str]
    disabled: list[str]


def _decode(
    bits: Bits,
    cpu_map: CpuMap,
    vendor: str | None,
    signature: tuple[int, int, int] | None,
    *,
    host: bool,
    preferred: tuple[str, ...],
) -> Decoded | None:
    data = _filter_tsx(set(bits), cpu_map, vendor, signature)
    best: _Candidate | None = None
    for model in reversed(cpu_map.x86_models):
        if vendor and model.vendor and model.vendor != vendor:
            continue
        candidate = _candidate(data, model, cpu_map, host)
        verdict = _use(best, candidate, signature, host, preferred)
        if verdict:
            best = candidate
            if verdict == 2:
                break
    if best is None:
        return None
    return Decoded(best.model.name, vendor, tuple(best.features), tuple(best.disabled))


def _candidate(data: set[Bit], model: X86Model, cpu_map: CpuMap, host: bool) -> _Candidate:
    features = features_in(frozenset(data - model.bits), cpu_map)
    disabled = features_in(frozenset(model.bits - data), cpu_map)
    if not host:
        mentioned = set(features) | set(disabled)
        disabled += [name for name in model.removed if name not in mentioned]
    return _Candidate(model, features, disabled)


def _use(  # noqa: PLR0911 - one return per rule of libvirt's, in its order
    current: _Candidate | None,
    candidate: _Candidate,
    signature: tuple[int, int, int] | None,
    host: bool,
    preferred: tuple[str, ...],
) -> int:
    """0: keep the current model; 1: take the candidate; 2: take it and stop."""
    model = candidate.model
    if (host and not model.decode_host) or (not host and not model.decode_guest):
        return 0
    if host and candidate.disabled:
        return 0
    is_preferred = model.name in preferred
    if is_preferred and len(preferred) == 1:
        return 2
    if current is None:
        return 1
    if signature is not None and any(signature):
        current_matches = _matches(current.model, signature)
        candidate_matches = _matches(model, signature)
        if current_matches and not candidate_matches:
            return 0
        if candidate_matches and not current_matches:
            return 1
    cost, disabled_cost = _cost(candidate, host)
    current_cost, current_disabled = _cost(current, host)
    if cost < current_cost or (cost == current_cost and disabled_cost < current_disabled):
        return 1
    return 1 if is_preferred and disabled_cost < current_disabled else 0


def _cost(candidate: _Candidate, host: bool) -> tuple[int, int]:
    """(score, disabled part) of a candidate: for a host CPU the number of features;
    for a guest CPU the enabled ones plus a growing penalty per disabled one, counted
    over the list (enabled first, then disabled) as far as libvirt's loop reaches: its
    bound shrinks by one with each disabled feature it meets."""
    listed = [False] * len(candidate.features) + [True] * len(candidate.disabled)
    enabled, disabled = len(listed), 0
    if host:
        return enabled, 0
    penalty, i = _BASE_PENALTY, 0
    while i < enabled:
        if listed[i]:
            enabled -= 1
            disabled += penalty
            penalty += 1
        i += 1
    return enabled + disabled, disabled


def _matches(model: X86Model, signature: tuple[int, int, int]) -> bool:
    return any(s.matches(*signature) for s in model.signatures)


def _filter_tsx(
    data: set[Bit], cpu_map: CpuMap, vendor: str | None, signature: tuple[int, int, int] | None
) -> set[Bit]:
    if vendor != "Intel" or signature is None:
        return data
    family, model, stepping = signature
    if family == 6 and ((model == 63 and stepping < 4) or model in _TSX_BROKEN):
        for name in ("hle", "rtm"):
            feature = cpu_map.feature(name)
            if feature is not None:
                data -= feature.bits
    return data
