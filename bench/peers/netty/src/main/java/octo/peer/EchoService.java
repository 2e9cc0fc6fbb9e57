package octo.peer;

import octo.idl.Echo;

/** The reference service of PROTOCOL.md section 6: {@code echo} returns its argument. */
final class EchoService implements Echo.Iface {
  @Override
  public String echo(String message) {
    return message;
  }
}
