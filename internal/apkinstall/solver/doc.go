// Package solver is apk's dependency solver: it turns a world (list of constraints), the
// repositories and the installed packages into an ordered changeset, with apk's provider
// preferences, install order, output lines and "unable to select packages" report.
//
// It is a port of the algorithm of apk-tools 3.x (src/solver.c, deductive propagation without
// backtracking; src/commit.c for the report), not of its code. Conformance:
//
//   - all 89 solver vectors of apk-tools 3.0.6 (test/solver) produce byte-identical output,
//     the 50 `add` cases without @INSTALLED (the initramfs case) included;
//   - the boot worlds of Alpine 3.19.1 x86_64 and 3.13.4 aarch64, and hundreds of random worlds
//     over those repositories (package and so:/cmd: names, conflicts, versioned constraints),
//     give byte-identical change lists and error reports to the real apk 2.14.4, on empty and
//     on installed roots.
//
// Orders that apk derives from its hash table of names (reverse dependencies, install_if
// triggers) are reproduced by walking names in that table's order (murmur3, 20000 buckets).
//
// apk 2.14 (Alpine <= 3.22) and 3.0.6 disagree on 8 of the vectors (checked by running them
// through the real apk 2.14.4); this package follows 3.0.6 there:
//
//   - installif8: install_if with a negated condition (i:foo !bar) is a 3.x feature;
//   - provides-swap3: 3.x also triggers install_if through names a package provides;
//   - provides18: apk 3 `del` prefers another provider over keeping the removed one;
//   - provides19: a conflict is satisfied by the declaring package itself (D:!x p:x), 2.14
//     reports it as broken;
//   - provides22: 2.14 fails ("Huh? Error reporter did not find the broken constraints.");
//   - basic16, selfupgrade5, selfupgrade7: options 2.14 does not have.
//
// None of these arise in Alpine's boot repositories. Output formats differ too (the counter
// width, the size on the OK line, and apk 3 sorting the lists of its error report); Style
// selects which one Change.Line, OKLine and Request.Style produce.
package solver
