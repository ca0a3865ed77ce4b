// Package dying has a test that hangs past -test.timeout and one that crashes the binary.
package dying
