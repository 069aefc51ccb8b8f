package kmod

// Fnmatch exposes fnmatch to the external tests.
var Fnmatch = fnmatch
