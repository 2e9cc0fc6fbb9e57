//! The comparison server: the same OCTO/Thrift Echo work as octo's server (engine::proto frame
//! split, header decode, echo args decode, reply encode) on a tokio current_thread runtime, or
//! the same raw frame echo.

use bytes::{BufMut, BytesMut};
use octo_engine::proto::{
    decode_octo, echo, Frame, FrameDecoder, Header, OctoFrameWriter, ResponseInfo, Status,
    ThriftFrameWriter, DEFAULT_MAX_FRAME_SIZE,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Serves connections accepted on `listener` on this thread until the process ends.
pub fn serve(listener: std::net::TcpListener, cpu: Option<usize>, raw: bool) {
    if let Some(id) = cpu {
        core_affinity::set_for_current(core_affinity::CoreId { id });
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .expect("tokio runtime");
    rt.block_on(async move {
        listener
            .set_nonblocking(true)
            .expect("nonblocking listener");
        let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                continue;
            };
            let _ = socket.set_nodelay(true);
            tokio::spawn(connection(socket, raw));
        }
    });
}

async fn connection(mut socket: tokio::net::TcpStream, raw: bool) {
    let mut input = BytesMut::with_capacity(16 << 10);
    let mut output = BytesMut::with_capacity(16 << 10);
    let mut decoder = FrameDecoder::new(DEFAULT_MAX_FRAME_SIZE);
    loop {
        if input.capacity() - input.len() < 4096 {
            input.reserve(16 << 10);
        }
        match socket.read_buf(&mut input).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        loop {
            match decoder.decode(&mut input) {
                Ok(Some(frame)) => {
                    if (if raw {
                        echo_raw(frame, &mut output)
                    } else {
                        answer(frame, &mut output)
                    })
                    .is_err()
                    {
                        return;
                    }
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
        if !output.is_empty() {
            if socket.write_all(&output).await.is_err() {
                return;
            }
            output.clear();
        }
    }
}

fn echo_raw(frame: Frame, out: &mut BytesMut) -> Result<(), ()> {
    match frame {
        Frame::Octo(f) => out.extend_from_slice(&f),
        Frame::Thrift(m) => {
            out.put_i32(m.len() as i32);
            out.extend_from_slice(&m);
        }
    }
    Ok(())
}

fn answer(frame: Frame, out: &mut BytesMut) -> Result<(), ()> {
    match frame {
        Frame::Octo(f) => {
            let f = decode_octo(f, DEFAULT_MAX_FRAME_SIZE).map_err(drop)?;
            let h = f.header_ref().map_err(drop)?;
            let seq = h.request_info.map_or(0, |r| r.sequence_id);
            let (seqid, msg) = echo::decode_call(&f.body).map_err(drop)?;
            let mut w = OctoFrameWriter::begin(out, f.version, f.flags);
            Header {
                response_info: Some(ResponseInfo {
                    sequence_id: seq,
                    status: Status::Success,
                    message: None,
                }),
                ..Header::default()
            }
            .encode(w.buf());
            w.end_header();
            echo::encode_reply(w.buf(), seqid, msg);
            w.finish().map_err(drop)?;
        }
        Frame::Thrift(m) => {
            let (seqid, msg) = echo::decode_call(&m).map_err(drop)?;
            let mut w = ThriftFrameWriter::begin(out);
            echo::encode_reply(w.buf(), seqid, msg);
            w.finish().map_err(drop)?;
        }
    }
    Ok(())
}
