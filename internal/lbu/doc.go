// Package lbu is Alpine's Local Backup Utility, natively: it decides which files of a root
// differ from its installed packages (protected-path rules and lib/apk/db/installed, no apk
// binary), packs them into an apkovl, and commits that atomically and durably to the boot
// medium with backups, optional openssl-compatible encryption, status and diff.
package lbu
