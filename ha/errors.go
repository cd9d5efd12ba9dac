package ha

import "errors"

var (
	// ErrClosed is returned by the methods of a Membership after Close.
	ErrClosed = errors.New("ha: membership closed")

	// ErrInvalidConfig is wrapped by MembershipConfig.Validate's errors.
	ErrInvalidConfig = errors.New("ha: invalid membership config")

	// ErrInvalidMeta is wrapped when local NodeMeta fails validation.
	ErrInvalidMeta = errors.New("ha: invalid node meta")

	// ErrMetaTooLarge is wrapped when encoded NodeMeta exceeds MetaMaxSize.
	ErrMetaTooLarge = errors.New("ha: node meta too large")

	// ErrMalformedMeta is wrapped when a peer's metadata cannot be decoded.
	ErrMalformedMeta = errors.New("ha: malformed node meta")

	// ErrIncompatibleBinary is wrapped by CheckCompatible when two nodes run
	// binaries with different job registry fingerprints.
	ErrIncompatibleBinary = errors.New("ha: incompatible binary")
)
