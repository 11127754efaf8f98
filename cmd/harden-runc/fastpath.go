package main

// fastpath.c's constructor runs before the Go runtime; this import is what
// makes cgo compile and link it.

import "C"
