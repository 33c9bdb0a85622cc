package keystore

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// ExportFile writes the syncable credentials of s (those with ids, or
// every BackupEligible one when ids is nil) into a backup file at path,
// encrypted under passphrase (see ExportSelected), and returns how many it
// wrote. The file is 0600 and synced before the credentials are marked
// backed up (MarkBackedUp), so a failed export changes nothing and leaves
// no file behind. A path that exists fails with an error matching
// fs.ErrExist unless replace, which replaces it whole (a temporary file
// renamed over it).
func ExportFile(s Store, ids [][]byte, passphrase []byte, path string, replace bool) (int, error) {
	data, err := ExportUnmarked(s, ids, passphrase)
	if err != nil {
		return 0, err
	}
	if ids == nil {
		if ids, err = syncableIDs(s); err != nil {
			return 0, err
		}
	}
	if err := writeFileDurably(path, data, replace); err != nil {
		return 0, err
	}
	return len(ids), MarkBackedUp(s, ids)
}

// syncableIDs are the IDs of every BackupEligible credential of s.
func syncableIDs(s Store) ([][]byte, error) {
	all, err := s.Credentials()
	if err != nil {
		return nil, fmt.Errorf("listing credentials: %w", err)
	}
	var ids [][]byte
	for _, c := range all {
		if c.BackupEligible {
			ids = append(ids, c.ID)
		}
	}
	return ids, nil
}

// writeFileDurably writes data to a new file at path, 0600 and synced; with
// replace, to a temporary file renamed over path. It removes what it wrote
// when it fails.
func writeFileDurably(path string, data []byte, replace bool) error {
	target := path
	if replace {
		target = path + ".tmp"
		_ = os.Remove(target)
	}
	f, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%s exists already: %w", path, fs.ErrExist)
	}
	if err != nil {
		return fmt.Errorf("writing the backup: %w", err)
	}
	err = f.Chmod(0o600)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && replace {
		err = os.Rename(target, path)
	}
	if err != nil {
		os.Remove(target)
		return fmt.Errorf("writing the backup to %s: %w", path, err)
	}
	return nil
}
