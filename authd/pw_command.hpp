// pw_command.hpp - `authd pw`: make and check password hashes the way `doveadm pw` does.
//
//   authd pw [-l] [-p plaintext] [-r rounds] [-s scheme] [-t hash] [-u user] [-V]
//
// -s picks the scheme (default CRYPT, i.e. bcrypt "$2y$", as doveadm 2.3); the hash is
// printed as "{SCHEME}data". -t checks a "{SCHEME}data" (or bare "$1$...") hash against the
// password and prints "<hash> (verified)"; -V checks the hash just made. Without -p the
// password is asked on the terminal (echo off, typed twice) or read as one line from a
// non-terminal stdin. -u gives the user for DIGEST-MD5. -l lists the schemes.
#pragma once

namespace postern::authd {

// argv[0..argc) are the arguments after "pw" (options only, no program or command name).
// Writes to stdout/stderr and returns the exit status doveadm uses: 0 ok, 64 usage error,
// 75 failure (unknown scheme, undecodable hash, password mismatch), 1 when the two typed
// passwords differ three times.
int run_pw_command(int argc, char** argv);

}  // namespace postern::authd
