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
