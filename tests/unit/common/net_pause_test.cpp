// net_pause_test.cpp - Connection (common/net.hpp) while paused: frames held and delivered
// after resume, the paused-read limit, EOF and the idle timeout during a pause.
#include "tests/unit/common/net_test_support.hpp"

using namespace postern;
using namespace net_test;

TEST_CASE("pause_reading holds buffered frames; resume delivers them from the loop", "[net]") {
  Harness h;
  std::vector<std::string> frames;
  int depth = 0, max_depth = 0;
  size_t at_timer = 0, right_after_resume = 0;
  uv_timer_t later;
  uv_timer_init(&h.loop, &later);
  std::function<void()> resume = [&] {
    at_timer = frames.size();
    h.conn->resume_reading();
    right_after_resume = frames.size();
  };
  later.data = &resume;
  h.listen(Framing::line, {}, [&](Connection& c) {
    c.on_frame = [&](std::string_view f) {
      max_depth = std::max(max_depth, ++depth);
      frames.emplace_back(f);
      c.write(std::string(f) + "!\n");
      if (f == "a") {
        c.pause_reading();
        uv_timer_start(&later, [](uv_timer_t* t) { (*static_cast<std::function<void()>*>(t->data))(); }, 50, 0);
      } else if (f == "b") {
        c.pause_reading();
        c.resume_reading();  // from inside on_frame: must not nest
      }
      --depth;
    };
  });
  std::string got;
  h.run([&] {
    int fd = unix_client(h.path());
    send_str(fd, "a\nb\nc\n");
    got = read_upto(fd, 9);
    close(fd);
  });
  uv_close(reinterpret_cast<uv_handle_t*>(&later), nullptr);
  uv_run(&h.loop, UV_RUN_DEFAULT);
  CHECK(at_timer == 1);
  CHECK(right_after_resume == 1);
  CHECK(frames == std::vector<std::string>{"a", "b", "c"});
  CHECK(max_depth == 1);
  CHECK(got == "a!\nb!\nc!\n");
}

TEST_CASE("while paused: reading stops at kPausedReadLimit, the idle timeout waits, all comes after resume",
          "[net]") {
  Harness h;
  const size_t lines = 40 * Connection::kPausedReadLimit / 100;  // about 2.6 MB
  std::vector<std::string> frames;
  size_t frames_at_resume = 0;
  bool open_at_resume = false;
  uv_timer_t worker;
  uv_timer_init(&h.loop, &worker);
  std::function<void()> answer = [&] {
    frames_at_resume = frames.size();
    open_at_resume = !h.conn->closing();
    h.conn->write("slow!\n");
    h.conn->resume_reading();
  };
  worker.data = &answer;
  h.listen(Framing::line, limits_with(1024, 100), [&](Connection& c) {
    c.on_frame = [&](std::string_view f) {
      frames.emplace_back(f);
      if (f != "slow") return;
      c.pause_reading();  // a 400 ms job: four idle timeouts long
      uv_timer_start(&worker, [](uv_timer_t* t) { (*static_cast<std::function<void()>*>(t->data))(); }, 400, 0);
    };
  });
  std::string burst;
  for (size_t i = 0; i < lines; ++i) burst += std::string(98, static_cast<char>('a' + i % 26)) + "\n";
  size_t sent_while_paused = 0;
  std::string got;
  h.run([&] {
    int fd = unix_client(h.path());
    send_str(fd, "slow\n");
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    // Without blocking, send what the socket and the paused server take within 150 ms.
    auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(150);
    while (std::chrono::steady_clock::now() < until && sent_while_paused < burst.size()) {
      ssize_t n = send(fd, burst.data() + sent_while_paused, burst.size() - sent_while_paused, MSG_DONTWAIT);
      if (n > 0) sent_while_paused += size_t(n);
      else std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    send_str(fd, burst.substr(sent_while_paused) + "last\npartial");
    shutdown(fd, SHUT_WR);
    got = read_upto(fd);
    close(fd);
  });
  uv_close(reinterpret_cast<uv_handle_t*>(&worker), nullptr);
  uv_run(&h.loop, UV_RUN_DEFAULT);
  // The socket buffer (about 200 KiB) plus at most the limit and one read, not everything.
  CHECK(sent_while_paused < burst.size() / 2);
  CHECK(frames_at_resume == 1);
  CHECK(open_at_resume);
  REQUIRE(frames.size() == lines + 2);
  CHECK(frames[1] == std::string(98, 'a'));
  CHECK(frames[lines] == std::string(98, static_cast<char>('a' + (lines - 1) % 26)));
  CHECK(frames.back() == "last");
  CHECK(got == "slow!\n");
  CHECK(h.closes == 1);
}

TEST_CASE("while paused: an EOF waits for the resume and the frames before it, then on_eof runs", "[net]") {
  Harness h;
  std::vector<std::string> frames;
  bool eof_before_resume = false;
  size_t frames_at_eof = 0;
  bool eof = false;
  uv_timer_t worker;
  uv_timer_init(&h.loop, &worker);
  std::function<void()> answer = [&] {
    eof_before_resume = eof;
    h.conn->write("slow!\n");
    h.conn->resume_reading();
  };
  worker.data = &answer;
  h.listen(Framing::line, {}, [&](Connection& c) {
    c.on_frame = [&](std::string_view f) {
      frames.emplace_back(f);
      if (f != "slow") return;
      c.pause_reading();
      uv_timer_start(&worker, [](uv_timer_t* t) { (*static_cast<std::function<void()>*>(t->data))(); }, 200, 0);
    };
    c.on_eof = [&] {
      eof = true;
      frames_at_eof = frames.size();
      h.conn->write("bye\n");
      h.conn->close_after_write();
    };
  });
  std::string got;
  h.run([&] {
    int fd = unix_client(h.path());
    send_str(fd, "slow\n");
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    send_str(fd, "a\nb\n");  // read while paused, with the EOF after it
    shutdown(fd, SHUT_WR);
    got = read_upto(fd);
    close(fd);
  });
  uv_close(reinterpret_cast<uv_handle_t*>(&worker), nullptr);
  uv_run(&h.loop, UV_RUN_DEFAULT);
  CHECK_FALSE(eof_before_resume);
  CHECK(frames == std::vector<std::string>{"slow", "a", "b"});
  CHECK(frames_at_eof == 3);
  CHECK(got == "slow!\nbye\n");
  CHECK(h.closes == 1);
}

TEST_CASE("close_after_write while paused: a client that does not read is timed out", "[net]") {
  Harness h;
  const size_t reply = 4 << 20;  // far more than the socket buffer takes
  h.listen(Framing::line, limits_with(1024, 100, 8 << 20), [&](Connection& c) {
    c.on_frame = [&c, reply](std::string_view) {
      c.pause_reading();  // e.g. lookupd draining its in-flight requests on shutdown
      c.write(std::string(reply, 'x'));
      c.close_after_write();
    };
  });
  size_t received = 0;
  h.run([&] {
    int fd = unix_client(h.path());
    send_str(fd, "go\n");
    std::this_thread::sleep_for(std::chrono::milliseconds(500));  // five idle timeouts
    received = read_upto(fd, reply).size();
    close(fd);
  });
  CHECK(received < reply);
  CHECK(h.closes == 1);
}
