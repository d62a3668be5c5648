// auth_test_command.hpp - `authd test`: one login through a running auth-client socket.
//
//   authd test [-a SOCKET] [-m plain|login] USER PASSWORD
// Like `doveadm auth test`: works against authd or Dovecot. SOCKET is a unix path or
// inet:host:port (default /var/spool/postfix/private/auth). Prints
// "passdb: USER auth succeeded" (exit 0) or "passdb: USER auth failed" (exit 77); a
// closed connection or timeout is a temporary failure (exit 75), as Postfix sees it.
#pragma once

namespace postern::authd {

int run_auth_test_command(int argc, char** argv);

}  // namespace postern::authd
