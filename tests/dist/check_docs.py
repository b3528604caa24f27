#!/usr/bin/python3
"""Completions and man pages held against the programs' own command lines.

jitgate_cli_spec prints the sub-commands and options that jitgate and
jitgated accept, from the same CLI11 definitions main() parses with.  Every
sub-command and option the bash completion offers (asked the way bash asks
it: COMP_WORDS, then _jitgate), the zsh completion names, and the man pages
document must exist there, and every one there must be offered and
documented.  A port the bash completion offers must be one `jitgate request`
accepts (a port of proto "both" is two: PORT/tcp and PORT/udp); the audit
types offered are the CLI's; the pin directory jitgated(8) names carries the
current ABI version; and no source file spells the version (JITGATE_VERSION
comes from the build).

usage: check_docs.py SPEC.json BASH_COMPLETION ZSH_COMPLETION MAN_SOURCE JITGATE SOURCE_DIR
Prints "ok"/"FAIL" lines as tests/dist/check.sh does, then "N passed, M failed".
"""
import json
import os
import re
import subprocess
import sys

OPTION = re.compile(r"(?<![\w-])(--?[A-Za-z][\w-]*)")
passed = failed = 0


def report(name, problems):
    global passed, failed
    if problems:
        failed += 1
        print(f"  FAIL  {name}")
        for p in problems:
            print(f"        {p}")
    else:
        passed += 1
        print(f"  ok    {name}")


def compare(what, offered, required, allowed):
    """Problems: what is required but not offered, offered but not allowed."""
    out = []
    missing = sorted(set(required) - set(offered))
    extra = sorted(set(offered) - set(allowed))
    if missing:
        out.append(f"{what} lacks {' '.join(missing)}")
    if extra:
        out.append(f"{what} offers {' '.join(extra)}, which the program does not accept")
    return out


# --- the spec ---------------------------------------------------------------

def walk(node, path=()):
    """(path, node, ancestors) for every command, the root first."""
    out = [(path, node)]
    for sub in node["subcommands"]:
        out += walk(sub, path + (sub["name"],))
    return out


def names(node, long_only=False):
    return {n for o in node["options"] for n in o["names"] if not long_only or n.startswith("--")}


def inherited(root, path):
    """Options that reach `path` from its ancestors by fallthrough: all of
    theirs are accepted; only jitgate's own (global) ones, but --help and
    --version, are worth offering there (`audit verify --follow` parses, and
    is refused)."""
    allowed, offer = set(), set()
    node, chain = root, [root]
    for name in path:
        node = next(s for s in node["subcommands"] if s["name"] == name)
        chain.append(node)
    for anc, child in zip(chain, chain[1:]):
        if not child["fallthrough"]:
            allowed, offer = set(), set()
            continue
        allowed |= names(anc)
        if anc is root:
            offer |= names(anc, long_only=True) - {"--help", "--version"}
    return allowed, offer


# --- bash ---------------------------------------------------------------------

BASH_PROBE = r'''
source "$1"; shift
jitgate() {
    case "$*" in
        *"list --pending"*) echo '{"requests":[{"request_id":12,"state":"pending"}]}' ;;
        *"list --active"*) echo '{"grants":[{"grant_id":13,"request_id":12}]}' ;;
        *status*) echo '{"ports":[{"name":"db","port":5432,"proto":"tcp"},{"name":"dns","port":53,"proto":"both"},{"name":"mdns","port":5353,"proto":"udp"}]}' ;;
    esac
}
COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); COMPREPLY=()
_jitgate
printf '%s\n' "${COMPREPLY[@]}"
'''
MOCK_PORTS = {"5432/tcp", "53/tcp", "53/udp", "5353/udp"}


def bash_complete(script, *words):
    r = subprocess.run(["bash", "-c", BASH_PROBE, "_", os.path.abspath(script), "jitgate", *words], capture_output=True,
                       text=True, timeout=30, cwd="/")
    return {w for w in r.stdout.split("\n") if w}


def check_bash(spec, script, jitgate):
    root = spec["jitgate"]
    for path, node in walk(root):
        allowed_up, offer_up = inherited(root, path)
        label = " ".join(("jitgate",) + path)
        offered = bash_complete(script, *path, "-")
        report(f"bash: {label} -<TAB> offers its options",
               compare(label, offered, names(node, True) | offer_up, names(node) | allowed_up | {"--"}))
        subs = {s["name"] for s in node["subcommands"]}
        if subs:
            words = {w for w in bash_complete(script, *path, "") if not w.startswith("-")}
            report(f"bash: {label} <TAB> offers its sub-commands", compare(label, words, subs, subs))
    types = bash_complete(script, "audit", "--type", "")
    report("bash: audit --type offers the audit record types",
           compare("--type", types, spec["audit_types"], spec["audit_types"]))
    ports = bash_complete(script, "request", "")
    problems = compare("request <TAB>", ports, MOCK_PORTS, MOCK_PORTS)
    for p in sorted(ports):
        # Refused input exits 2; accepted input goes on to the (absent) daemon: 4.
        r = subprocess.run([jitgate, "--socket", "/nonexistent/jitgate.sock", "request", p, "--for", "1m",
                            "--reason", "check"], capture_output=True, text=True, timeout=30)
        if r.returncode != 4:
            problems.append(f"jitgate request {p} is refused: {r.stderr.strip()}")
    report("bash: request <TAB> offers ports jitgate request accepts (53 of proto both as 53/tcp, 53/udp)",
           problems)


# --- zsh ----------------------------------------------------------------------

def zsh_branches(text):
    """The top-level _arguments, the commands array, and {sub-command: the
    text of its branch of `case $line[1]`}."""
    # $common: the specs every _arguments call shares, spelled out where used.
    common = re.search(r"local -a common=\((.*?)\n\s*\)", text, re.S)
    if common:
        text = text.replace("$common", common.group(1))
    top = text[text.index("_arguments -C"):text.index("case $state")]
    cmds = re.search(r"local -a commands=\((.*?)\n\s*\)", text, re.S).group(1)
    commands = re.findall(r"'([\w-]+):", cmds)
    body = text[text.index("case $line[1] in"):]
    branches = {}
    for m in re.finditer(r"^\s+([\w|-]+)\)\n(.*?);;", body, re.S | re.M):
        for name in m.group(1).split("|"):
            branches[name] = m.group(2)
    return top, commands, branches


def specs(text):
    """The options in the quoted words of `text` (the _arguments specs; the
    shell code around them has options of its own: local -a, [[ -n ]])."""
    return set(OPTION.findall("\n".join(re.findall(r"'[^']*'|\"[^\"]*\"", text))))


def check_zsh(spec, script):
    root = spec["jitgate"]
    with open(script) as f:
        top, commands, branches = zsh_branches(f.read())
    subs = [s["name"] for s in root["subcommands"]]
    report("zsh: the commands are jitgate's sub-commands", compare("commands", commands, subs, subs))
    report("zsh: the options before a sub-command are jitgate's",
           compare("jitgate", specs(top), names(root, True), names(root)))
    for sub in root["subcommands"]:
        name = sub["name"]
        if name not in branches:
            report(f"zsh: jitgate {name} has a branch", [f"no `{name})` in case $line[1]"])
            continue
        text = branches[name]
        allowed_up, offer_up = inherited(root, (name,))
        allowed = names(sub) | allowed_up
        for path, node in walk(sub):  # a nested sub-command's options are completed in its parent's branch
            allowed |= names(node) | inherited(root, (name,) + path)[0]
        report(f"zsh: jitgate {name} offers its options",
               compare(f"jitgate {name}", specs(text), names(sub, True) | offer_up, allowed))
        nested = {s["name"] for s in sub["subcommands"]}
        if nested:
            m = re.search(r"subcommand:\(([^)]*)\)", text)
            offered = set(m.group(1).split()) if m else set()
            report(f"zsh: jitgate {name} offers its sub-commands",
                   compare(f"jitgate {name}", offered, nested, nested))
    m = re.search(r"--type\[[^]]*\]:type:\(([^)]*)\)", branches.get("audit", ""))
    types = set(m.group(1).split()) if m else set()
    report("zsh: audit --type offers the audit record types",
           compare("--type", types, spec["audit_types"], spec["audit_types"]))


# --- man pages ----------------------------------------------------------------

def man_pages(source):
    pages, cur = {}, None
    with open(source) as f:
        for line in f.read().split("\n"):
            m = re.match(r"^% (\S+) (\d) ", line)
            if m:
                cur = pages.setdefault(m.group(1), [])
            elif cur is not None:
                cur.append(line)
    return pages


def section(lines, title):
    out, inside = [], False
    for line in lines:
        if line.startswith("## "):
            inside = line[3:].strip() == title
        elif inside:
            out.append(line)
    return out


def terms(lines):
    """The terms of `* term` items (the first line of each)."""
    return [line[2:] for line in lines if line.startswith("* ")]


def check_man_jitgate(spec, page):
    root = spec["jitgate"]
    runnable = {" ".join(p): n for p, n in walk(root) if p and n["require_subcommand"] == 0}
    documented = {}
    for term in terms(section(page, "COMMANDS")):
        m = re.match(r"`([\w-]+(?: [\w-]+)?)`", term)
        if m:
            documented[m.group(1)] = term
    report("jitgate(1): COMMANDS documents every sub-command and no other",
           compare("COMMANDS", documented, runnable, runnable))
    for path, term in documented.items():
        if path in runnable:
            own = names(runnable[path], True) - {"--help"}
            got = set(OPTION.findall(term)) - {"-"}
            report(f"jitgate(1): `{path}` shows its options", compare(f"`{path}`", got, own, own))
    synopsis = set(OPTION.findall("\n".join(section(page, "SYNOPSIS"))))
    top = names(root, True) - {"--help"}
    report("jitgate(1): SYNOPSIS shows jitgate's own options", compare("SYNOPSIS", synopsis, top, top))
    every = set().union(*(names(n) for _, n in walk(root)))
    report("jitgate(1): every option it names exists",
           compare("jitgate(1)", set(OPTION.findall("\n".join(page))), set(), every))


def check_man_jitgated(spec, page, abi):
    daemon = spec["jitgated"]
    listed = set()
    for term in terms(section(page, "OPTIONS")):
        listed |= set(OPTION.findall(term.split("*")[0]))
    want = names(daemon) - {"-h", "--help"}
    report("jitgated(8): OPTIONS documents every jitgated option and no other",
           compare("OPTIONS", listed, want, want))
    report("jitgated(8): every option it names exists",
           compare("jitgated(8)", set(OPTION.findall("\n".join(page))), set(), names(daemon)))
    pins = re.findall(r"/sys/fs/bpf/jitgate/v(\d+)", "\n".join(page))
    problems = [] if pins else ["names no pin directory /sys/fs/bpf/jitgate/vN/"]
    problems += [f"names the pin directory v{v}/, the ABI version is {abi} (JG_ABI_VERSION)"
                 for v in pins if int(v) != abi]
    report(f"jitgated(8): pins live under /sys/fs/bpf/jitgate/v{abi}/", problems)


def check_version_literal(spec, src):
    problems = []
    literal = re.compile(r'"' + re.escape(spec["version"]) + r'"')
    for d, _, files in (w for top in ("userspace", "tests") for w in os.walk(os.path.join(src, top))):
        for f in files:
            path = os.path.join(d, f)
            with open(path, errors="replace") as fh:
                for n, line in enumerate(fh, 1):
                    if literal.search(line):
                        problems.append(f"{os.path.relpath(path, src)}:{n}: {line.strip()}")
    report(f'no source spells the version "{spec["version"]}" (JITGATE_VERSION)', problems)


def main():
    spec_file, bash_script, zsh_script, man_source, jitgate, src = sys.argv[1:7]
    with open(spec_file) as f:
        spec = json.load(f)
    check_bash(spec, bash_script, jitgate)
    check_zsh(spec, zsh_script)
    pages = man_pages(man_source)
    check_man_jitgate(spec, pages["jitgate"])
    check_man_jitgated(spec, pages["jitgated"], spec["abi_version"])
    check_version_literal(spec, src)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
