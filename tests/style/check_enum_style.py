#!/usr/bin/env python3
"""Checks the code base's one enum style: every enumerator is kCamelCase.

    check_enum_style.py SOURCE_DIR

Scans the project's C++ sources (.hpp, .cpp, .cu, .h) outside build trees for
`enum` and `enum class` definitions and prints each enumerator that does not
match k[A-Z0-9][A-Za-z0-9]* as FILE:LINE: enumerator 'NAME' of enum 'ENUM' is
not kCamelCase. Exits 1 when any is found, 0 otherwise (and says how many
enums it checked, so a scan that finds none is visible).
"""
import os
import re
import sys

ENUM = re.compile(r"\benum\s+(?:class\s+|struct\s+)?(\w*)\s*(?::\s*[\w:\s]+?)?\s*\{([^{}]*)\}", re.S)
GOOD = re.compile(r"^k[A-Z0-9][A-Za-z0-9]*$")
SKIP_DIRS = {".git", "build", "_build", "Testing", "third_party", "vendor"}


def strip_comments(text):
    # Keeps line structure so that line numbers stay right.
    text = re.sub(r"/\*.*?\*/", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "."
    bad, enums = [], 0
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS and not d.startswith("build")]
        for f in filenames:
            if not f.endswith((".hpp", ".cpp", ".cu", ".h", ".cuh")):
                continue
            path = os.path.join(dirpath, f)
            text = strip_comments(open(path, encoding="utf-8", errors="replace").read())
            for m in ENUM.finditer(text):
                enums += 1
                body_start = m.start(2)
                for item in m.group(2).split(","):
                    name = item.split("=")[0].strip()
                    if not name:
                        continue
                    offset = body_start + m.group(2).find(item)
                    line = text.count("\n", 0, offset) + 1 + item[: len(item) - len(item.lstrip())].count("\n")
                    if not GOOD.match(name):
                        rel = os.path.relpath(path, root)
                        bad.append(f"{rel}:{line}: enumerator '{name}' of enum '{m.group(1) or '(anonymous)'}' is not kCamelCase")
    for b in bad:
        print(b)
    print(f"check_enum_style: {enums} enums checked, {len(bad)} enumerators not kCamelCase")
    return 1 if bad or enums == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
