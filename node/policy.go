package node

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/harden-dev/harden/profiles"
)

// PolicyCache loads the policy file and reloads it when it changes, so an
// edited policy applies to the next container without restarting anything,
// and an unchanged one costs a stat. Safe for concurrent use.
type PolicyCache struct {
	path string

	mu       sync.Mutex
	key      fileKey
	compiled *profiles.Compiled
	err      error
}

// fileKey identifies one version of a file. A ConfigMap update swaps a
// symlink, which changes the inode; an editor's rewrite changes mtime or size.
type fileKey struct {
	exists      bool
	dev, ino    uint64
	size        int64
	mtime       time.Time
	checkedOnce bool
}

// NewPolicyCache caches the policy at path.
func NewPolicyCache(path string) *PolicyCache {
	return &PolicyCache{path: path}
}

// Path returns the policy file the cache watches.
func (c *PolicyCache) Path() string { return c.path }

// Get returns the current policy: the file if it exists, else the embedded
// default. A file that exists but does not load is an error (the previous
// good version is not used: the operator changed the file, and running on a
// policy they replaced would hide that their change did not apply).
func (c *PolicyCache) Get() (*profiles.Compiled, error) {
	k, err := statKey(c.path)
	if err != nil {
		return nil, fmt.Errorf("load policy %s: %w", c.path, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.key.checkedOnce && k == c.key {
		return c.compiled, c.err
	}
	if k.exists {
		c.compiled, c.err = profiles.Load(c.path)
	} else {
		c.compiled, c.err = profiles.LoadDefault()
	}
	c.key = k
	return c.compiled, c.err
}

func statKey(p string) (fileKey, error) {
	fi, err := os.Stat(p)
	if errors.Is(err, os.ErrNotExist) {
		return fileKey{checkedOnce: true}, nil
	}
	if err != nil {
		return fileKey{}, err
	}
	k := fileKey{exists: true, size: fi.Size(), mtime: fi.ModTime(), checkedOnce: true}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		k.dev, k.ino = st.Dev, st.Ino
	}
	return k, nil
}
