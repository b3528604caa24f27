#!/usr/bin/python3
"""Writes the man pages jitgate(1), jitgated(8) and jitgate.toml(5) from
their one source, scripts/man/jitgate.man.md, a small Markdown subset:

  % NAME SECTION One-line description      starts a page
  ## TITLE / ### Title                      .SH / .SS
  a paragraph (lines up to a blank line)    .PP
  - item                                    a bullet (.IP)
  * term                                    a tagged paragraph (.TP): the
      indented lines after it               describe the term
  ``` ... ```                               verbatim (.nf), indented
  `code`, *argument*                        bold, italic

usage: mkman.py SOURCE OUTDIR VERSION
"""
import os
import re
import sys


def inline(text):
    text = text.replace("\\", "\\e").replace("-", "\\-")
    text = re.sub(r"`([^`]+)`", r"\\fB\1\\fR", text)
    text = re.sub(r"\*([^*\s][^*]*)\*", r"\\fI\1\\fR", text)
    return text


def line(text):
    """One output text line: a leading . or ' would be a request."""
    return "\\&" + text if text[:1] in (".", "'") else text


def page(name, section, desc, body, version):
    out = [f'.TH "{name.upper()}" "{section}" "" "jitgate {version}" "jitgate"',
           ".SH NAME", line(f"{inline(name)} \\- {inline(desc)}")]
    i = 0
    while i < len(body):
        text = body[i]
        if not text.strip():
            i += 1
            continue
        if text.startswith("```"):
            j = i + 1
            out += [".PP", ".RS 4", ".nf"]
            while j < len(body) and not body[j].startswith("```"):
                out.append(line(body[j].replace("\\", "\\e").replace("-", "\\-")))
                j += 1
            out += [".fi", ".RE"]
            i = j + 1
            continue
        if text.startswith("### "):
            out += [".SS " + inline(text[4:])]
            i += 1
            continue
        if text.startswith("## "):
            out += [".SH " + inline(text[3:])]
            i += 1
            continue
        if text.startswith("* "):
            out += [".TP", line(inline(text[2:]))]
            i += 1
            while i < len(body) and body[i].startswith("  ") and body[i].strip():
                out.append(line(inline(body[i].strip())))
                i += 1
            continue
        if text.startswith("- "):
            out += [".IP \\(bu 2", line(inline(text[2:]))]
            i += 1
            while i < len(body) and body[i].startswith("  ") and body[i].strip():
                out.append(line(inline(body[i].strip())))
                i += 1
            continue
        out.append(".PP")
        while i < len(body) and body[i].strip() and not body[i].startswith(("## ", "### ", "```", "* ", "- ")):
            out.append(line(inline(body[i].strip())))
            i += 1
    return "\n".join(out) + "\n"


def main():
    source, outdir, version = sys.argv[1:4]
    with open(source) as f:
        lines = f.read().split("\n")
    pages, cur = [], None
    for text in lines:
        m = re.match(r"^% (\S+) (\d) (.+)$", text)
        if m:
            cur = (m.group(1), m.group(2), m.group(3), [])
            pages.append(cur)
        elif cur is not None:
            cur[3].append(text)
    os.makedirs(outdir, exist_ok=True)
    for name, section, desc, body in pages:
        with open(os.path.join(outdir, f"{name}.{section}"), "w") as f:
            f.write(page(name, section, desc, body, version))


if __name__ == "__main__":
    main()
