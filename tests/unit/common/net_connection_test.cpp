// net_connection_test.cpp - Connection (common/net.hpp): framing, backpressure, timeouts, close.
#include "tests/unit/common/net_test_support.hpp"

using namespace postern;
using namespace net_test;
namespace fs = std::filesystem;

TEST_CASE("an over-long line gets on_frame_error, the last reply, then a close", "[net]") {
  Harness h;
  std::vector<std::string> frames;
  FrameStatus why = FrameStatus::frame;
  h.listen(Framing::line, limits_with(16, 10000), [&](Connection& c) {
    echo(c, &frames);
    c.on_frame_error = [&c, &why](FrameStatus s) {
      why = s;
      c.write("ERR line too long\n");
    };
  });
  std::string got;
  h.run([&] {
    int fd = unix_client(h.path());
    send_str(fd, "short\n" + std::string(100, 'x') + "\nafter\n");
    got = read_upto(fd);
    close(fd);
  });
  CHECK(got == "short!\nERR line too long\n");
  CHECK(frames == std::vector<std::string>{"short"});
  CHECK(why == FrameStatus::too_long);
  CHECK(h.closes == 1);
}

TEST_CASE("netstring framing over a socket, and a malformed netstring closes", "[net]") {
  Harness h;
  std::vector<std::string> frames;
  FrameStatus why = FrameStatus::frame;
  h.listen(Framing::netstring, {}, [&](Connection& c) {
    c.on_frame = [&c, &frames](std::string_view f) {
      frames.emplace_back(f);
      c.write(encode_netstring("got " + std::string(f)));
    };
    c.on_frame_error = [&why](FrameStatus s) { why = s; };
  });
  std::string got;
  h.run([&] {
    int fd = unix_client(h.path());
    send_str(fd, "3:abc,0:,12:with\nnewline,");
    send_str(fd, "05:hello,");
    got = read_upto(fd);
    close(fd);
  });
  CHECK(got == "7:got abc,4:got ,16:got with\nnewline,");
  CHECK(frames == std::vector<std::string>{"abc", "", "with\nnewline"});
  CHECK(why == FrameStatus::malformed);
}

TEST_CASE("backpressure: reading stops above the high water and resumes once drained", "[net]") {
  Harness h;
  const size_t reply = 4 << 20;
  std::vector<std::string> frames;
  std::atomic<bool> go{false};
  size_t queued_while_stuck = 0, frames_while_stuck = 0;
  uv_timer_t check;
  uv_timer_init(&h.loop, &check);
  std::function<void()> inspect = [&] {
    queued_while_stuck = h.conn->write_queue_bytes();
    frames_while_stuck = frames.size();
    go = true;
  };
  check.data = &inspect;
  h.listen(Framing::line, limits_with(1024, 10000, 1024), [&](Connection& c) {
    c.on_frame = [&](std::string_view f) {
      frames.emplace_back(f);
      c.write(std::string(reply, 'x'));
      // Look 300 ms later: "two" and "three" have long arrived but must not be delivered.
      if (frames.size() == 1)
        uv_timer_start(&check, [](uv_timer_t* t) { (*static_cast<std::function<void()>*>(t->data))(); }, 300, 0);
    };
  });

  size_t received = 0;
  h.run([&] {
    int fd = unix_client(h.path());
    send_str(fd, "one\ntwo\n");
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    send_str(fd, "three\n");
    while (!go) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    received = read_upto(fd, 3 * reply).size();
    close(fd);
  });
  uv_close(reinterpret_cast<uv_handle_t*>(&check), nullptr);
  uv_run(&h.loop, UV_RUN_DEFAULT);
  CHECK(frames_while_stuck == 1);
  CHECK(queued_while_stuck > 1024);
  CHECK(received == 3 * reply);
  CHECK(frames == std::vector<std::string>{"one", "two", "three"});
}

TEST_CASE("the idle timeout closes a quiet connection and is reset by traffic", "[net]") {
  Harness h;
  std::vector<std::string> frames;
  h.listen(Framing::line, limits_with(1024, 150), [&](Connection& c) { echo(c, &frames); });
  std::string got;
  std::chrono::milliseconds lived{0};
  h.run([&] {
    auto start = std::chrono::steady_clock::now();
    int fd = unix_client(h.path());
    send_str(fd, "a\n");
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    send_str(fd, "b\n");
    got = read_upto(fd);  // until the server closes
    lived = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
    close(fd);
  });
  CHECK(got == "a!\nb!\n");
  CHECK(h.closes == 1);
  CHECK(lived.count() >= 240);   // 100 ms of traffic, then the full 150 ms timeout
  CHECK(lived.count() < 5000);
}

TEST_CASE("close() from inside on_frame stops delivery at once", "[net]") {
  Harness h;
  std::vector<std::string> frames;
  bool closing_after = false;
  h.listen(Framing::line, {}, [&](Connection& c) {
    // Capturing the shared_ptr makes a cycle that the close must break (ASan checks leaks).
    std::shared_ptr<Connection> self = h.conn;
    c.on_frame = [self, &frames, &closing_after](std::string_view f) {
      frames.emplace_back(f);
      self->close();
      self->close();
      closing_after = self->closing();
      self->write("dropped\n");
    };
  });
  std::string got = "unset";
  h.run([&] {
    int fd = unix_client(h.path());
    send_str(fd, "a\nb\nc\n");
    got = read_upto(fd);
    close(fd);
  });
  CHECK(frames == std::vector<std::string>{"a"});
  CHECK(closing_after);
  CHECK(got.empty());
  CHECK(h.closes == 1);
}

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

TEST_CASE("EOF from the peer: queued replies are flushed, then the connection closes", "[net]") {
  Harness h;
  std::vector<std::string> frames;
  uv_timer_t worker;  // stands in for a worker answering "slow" later
  uv_timer_init(&h.loop, &worker);
  std::function<void()> answer = [&] {
    h.conn->write("slow!\n");
    h.conn->resume_reading();
  };
  worker.data = &answer;
  bool write_after_close_ignored = false;
  h.listen(Framing::line, {}, [&](Connection& c) {
    c.on_frame = [&](std::string_view f) {
      frames.emplace_back(f);
      if (f == "slow") {
        c.pause_reading();
        uv_timer_start(&worker, [](uv_timer_t* t) { (*static_cast<std::function<void()>*>(t->data))(); }, 50, 0);
      } else {
        c.write(std::string(f) + "!\n");
      }
    };
    c.on_close = [&] {
      h.conn->write("too late\n");
      write_after_close_ignored = h.conn->closing() && h.conn->write_queue_bytes() == 0;
    };
  });
  std::string got;
  h.run([&] {
    int fd = unix_client(h.path());
    send_str(fd, "a\nslow\nb\npartial");
    shutdown(fd, SHUT_WR);
    got = read_upto(fd);
    close(fd);
  });
  uv_close(reinterpret_cast<uv_handle_t*>(&worker), nullptr);
  uv_run(&h.loop, UV_RUN_DEFAULT);
  CHECK(got == "a!\nslow!\nb!\n");
  CHECK(frames == std::vector<std::string>{"a", "slow", "b"});
  CHECK(write_after_close_ignored);
  CHECK(h.closes == 1);
}

TEST_CASE("close_after_write sends the last reply and delivers nothing more", "[net]") {
  Harness h;
  std::vector<std::string> frames;
  h.listen(Framing::line, {}, [&](Connection& c) {
    c.on_frame = [&c, &frames](std::string_view f) {
      frames.emplace_back(f);
      c.write("BYE\n");
      c.close_after_write();
      c.write("and this\n");  // still queued: the stream has not closed yet
    };
  });
  std::string got;
  h.run([&] {
    int fd = unix_client(h.path());
    send_str(fd, "quit\nmore\n");
    got = read_upto(fd);
    close(fd);
  });
  CHECK(got == "BYE\nand this\n");
  CHECK(frames == std::vector<std::string>{"quit"});
}


TEST_CASE("replies to pipelined frames keep their order, also past the batch flush size", "[net]") {
  Harness h;
  // 3000 one-byte frames answered with 100 bytes each: 300 KB of replies for one burst,
  // more than the 64 KiB at which a batch is sent early.
  h.listen(Framing::line, {}, [](Connection& c) {
    c.on_frame = [&c](std::string_view f) {
      std::string reply(f);
      reply.resize(99, '.');
      c.write(reply + "\n");
    };
  });
  std::string requests;
  std::string expected;
  for (int i = 0; i < 3000; ++i) {
    std::string id = std::to_string(i);
    requests += id + "\n";
    std::string reply = id;
    reply.resize(99, '.');
    expected += reply + "\n";
  }
  std::string got;
  h.run([&] {
    int fd = unix_client(h.path());
    send_str(fd, requests);
    got = read_upto(fd, expected.size());
    close(fd);
  });
  CHECK(got.size() == expected.size());
  CHECK(got == expected);
}
